import type { Logger } from "pino";
import { DEFAULT_PROFILE, type WorkerProfile } from "../config-profiles.js";
import type { LoggedEvent } from "../sessions/event-log.js";
import type { ExecutionRequest } from "../sessions/execution-queue.js";
import type { AdoptedState, SessionRestore } from "../sessions/session-replication.js";
import type { SessionRegistry } from "../sessions/session-registry.js";
import type { Session } from "../sessions/session.js";
import type { ClusterStore, SessionJournal, SessionRecord, StoredExecution, WorkerRecord } from "../store/cluster-store.js";
import { AdoptedWorker } from "./adopted-worker.js";

export interface AdoptionDeps {
  store: ClusterStore;
  registry: SessionRegistry;
  heartbeatIntervalMs: number;
  /** How long an adopted session's worker gets to resume here. */
  resumeWaitMs: number;
  logger: Logger;
  /** Workers waiting to resume here, by id (the gateway asks on a resume it does not know). */
  adoptedWorkers: Map<string, AdoptedWorker>;
  profiles: ReadonlyMap<string, WorkerProfile>;
}

/** How long reconciling with a resumed worker may take. */
const STATUS_TIMEOUT_MS = 10_000;

/**
 * Continues a session whose replica is gone, on this one (which holds its
 * lease now): its events and records from the store, its state, and, when a
 * worker served it, an AdoptedWorker that waits for that worker's resume.
 * Executions the store holds with their code run here: the one the previous
 * owner had sent (or, when its "running" write was lost, the oldest queued)
 * is taken as running; once the worker is back it says what it really has,
 * and an execute it never got is sent again.
 */
export async function adoptSession(sessionId: string, deps: AdoptionDeps): Promise<Session | undefined> {
  const record = await deps.store.getSession(sessionId);
  if (!record) return undefined;
  const [journal, executions, workerRecord] = await Promise.all([
    deps.store.readJournal(sessionId),
    deps.store.listExecutions(sessionId),
    record.worker ? deps.store.getWorker(record.worker.workerId) : Promise.resolve(undefined),
  ]);
  const logger = deps.logger.child({ sessionId });
  const events: LoggedEvent[] = journal.events.map((event) => ({ seq: event.seq, requestId: event.requestId, frame: event.frame, at: event.at, done: event.done ?? false }));
  const doneInLog = new Set(events.flatMap((event) => (event.done && event.requestId !== null ? [event.requestId] : [])));
  const open = executions
    .filter((execution) => execution.state !== "ended" && execution.code !== undefined && !doneInLog.has(execution.requestId))
    .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  const { state, requeue } = adoptedState(record, journal, open, workerRecord, deps, logger);
  const restore: SessionRestore = {
    createdAt: new Date(record.info.createdAt),
    lastActivityAt: new Date(record.info.lastActivityAt),
    kernel: record.info.kernel,
    snapshot: record.info.snapshot,
    lastStop: record.info.stopReason,
    events,
    lastSeq: journal.lastSeq,
    executions: executions.map((execution) => ({ requestId: execution.requestId, state: doneInLog.has(execution.requestId) ? "ended" : execution.state })),
    state,
  };
  // A profile removed from TETHER_PROFILES since: the session goes on with the default one.
  const profile = deps.profiles.get(record.info.profile) ?? deps.profiles.get(DEFAULT_PROFILE);
  const options = { idleTimeoutS: record.info.idleTimeoutS, ...(profile ? { profile } : {}) };
  const session = deps.registry.adopt(sessionId, record.tenant, record.info.metadata, options, (adopted) => adopted.adopt(restore));
  logger.info({ state: state.kind, events: events.length, lastSeq: journal.lastSeq, open: open.length }, "adopted the session from a replica that is gone");
  // A session that was starting or stopped runs what it had queued once it resumes.
  for (const request of requeue) session.execute(request, undefined);
  return session;
}

function adoptedState(
  record: SessionRecord,
  journal: SessionJournal,
  open: readonly StoredExecution[],
  workerRecord: WorkerRecord | undefined,
  deps: AdoptionDeps,
  logger: Logger,
): { state: AdoptedState; requeue: ExecutionRequest[] } {
  const info = record.info;
  if (info.status === "failed") return { state: { kind: "failed", failure: info.failure ?? { code: "TETHER_ERR_SESSION_START_FAILED", message: "The session failed to start." } }, requeue: [] };
  const served = info.status === "ready" || info.status === "busy";
  if (!served || !record.worker || !workerRecord) {
    const stop = info.stopReason ?? { kind: "worker_lost" as const, message: "The replica serving the session went away before its worker joined; the next execute starts a new one.", at: new Date().toISOString() };
    return { state: { kind: "stopped", stop }, requeue: open.map(requestOf) };
  }
  const workerId = record.worker.workerId;
  const running = open.find((execution) => execution.state === "running") ?? open[0];
  const worker = new AdoptedWorker({
    sessionId: info.id,
    workerId,
    launchId: record.worker.launchId,
    kernel: info.kernel,
    resumeDigest: workerRecord.resumeDigest,
    persistedSeq: journal.worker?.workerId === workerId ? journal.worker.seq : 0,
    heartbeatIntervalMs: deps.heartbeatIntervalMs,
    resumeWaitMs: deps.resumeWaitMs,
    logger,
    onResumed: (resumed) => void reconcile(resumed, running, logger),
  });
  deps.adoptedWorkers.set(workerId, worker);
  return { state: { kind: "serving", worker, running: running ? requestOf(running) : undefined, queued: open.filter((e) => e !== running).map(requestOf) }, requeue: [] };
}

/** Asks the resumed worker what it has; an execute it never got (lost with the old replica) is sent again. */
async function reconcile(worker: AdoptedWorker, running: StoredExecution | undefined, logger: Logger): Promise<void> {
  if (!running) return;
  try {
    const status = await worker.call("executions_status", {}, STATUS_TIMEOUT_MS);
    const id = running.requestId;
    if (status.running === id || status.queued.includes(id) || status.ended.includes(id)) return;
    logger.info({ requestId: id }, "the worker never got the running execution; sending it again");
    const request = requestOf(running);
    worker.send({ type: "execute", requestId: request.requestId, code: request.code, timeoutMs: request.timeoutMs, stdin: request.stdin });
  } catch (error) {
    logger.warn({ err: error }, "could not reconcile executions with the resumed worker");
  }
}

function requestOf(execution: StoredExecution): ExecutionRequest {
  return { requestId: execution.requestId, code: execution.code ?? "", timeoutMs: execution.timeoutMs ?? 60_000, stdin: execution.stdin ?? { mode: "none" } };
}
