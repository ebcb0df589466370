import type { Logger } from "pino";
import type { Session } from "../sessions/session.js";

/** How often a draining replica looks for sessions between executions. */
const POLL_MS = 50;

/**
 * Hands every session over at its first quiet moment: stopped, failed, or
 * ready with nothing running (queued executions go with it: the store has
 * them). Past `timeoutMs` the rest go as they are: a running execution
 * carries on on its worker, under the next owner.
 */
export async function handOverAll(sessions: readonly Session[], handOver: (session: Session) => Promise<void>, timeoutMs: number, logger: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const waiting = new Set(sessions);
  const startedAt = Date.now();
  let forced = 0;
  while (waiting.size > 0) {
    const late = Date.now() >= deadline;
    for (const session of [...waiting]) {
      const quiet = session.state === "ready" || session.state === "failed" || (session.state === "stopped" && session.phase !== "stopping");
      if (!quiet && !late) continue;
      waiting.delete(session);
      if (!quiet) forced += 1;
      await handOver(session).catch((error: unknown) => logger.warn({ err: error, sessionId: session.id }, "could not hand the session over; the next replica takes it over when this one is gone"));
    }
    if (waiting.size > 0) await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  logger.info({ sessions: sessions.length, forced, drainMs: Date.now() - startedAt }, "sessions handed over");
}
