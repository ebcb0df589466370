import type { Socket } from "node:net";
import type { TetherApp } from "./tether-app.js";
import type { Composition } from "./composition.js";

/** How long sessions get to stop gracefully when the orchestrator shuts down. */
export const SHUTDOWN_SESSION_GRACE_MS = 15_000;
/**
 * Sockets still open this long after close began are destroyed: a websocket
 * peer that never answers the close handshake (one not reading, such as a
 * worker paused for a slow client) would otherwise hold close() for ws's 30 s
 * close timeout, and a half-open connection forever.
 */
export const SHUTDOWN_SOCKET_GRACE_MS = 20_000;

/**
 * The shutdown order, as a preClose hook that runs before the websocket
 * plugin drops every socket (workers get a `shutdown` while their connection
 * still stands): the pool first (it would replace the workers about to stop),
 * then the sessions within a grace, then whatever the launcher still runs;
 * then the snapshot sweeper stops.
 */
export function installShutdown(app: TetherApp, parts: Pick<Composition, "pool" | "registry" | "launcher" | "cluster" | "sweeper">, socketGraceMs = SHUTDOWN_SOCKET_GRACE_MS): void {
  const openSockets = new Set<Socket>();
  app.server.on("connection", (socket: Socket) => {
    openSockets.add(socket);
    socket.once("close", () => openSockets.delete(socket));
  });
  app.addHook("preClose", async () => {
    const forceClose = setTimeout(() => {
      for (const socket of openSockets) socket.destroy();
    }, socketGraceMs);
    forceClose.unref();
    await parts.pool?.close();
    if (parts.cluster) {
      // In a cluster sessions outlive a replica: each goes to another one (its worker carries on).
      await parts.cluster.drain();
      await parts.launcher.stopAll();
      await parts.cluster.close();
      await parts.sweeper.stop();
      return;
    }
    // Sessions stop gracefully within a bound (idle ones snapshotted: snapshots
    // outlive the process; only a DELETE removes one); whatever is still
    // running then is killed by the launcher, so a SIGTERM always ends.
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<"timeout">((resolve) => (graceTimer = setTimeout(() => resolve("timeout"), SHUTDOWN_SESSION_GRACE_MS)));
    const outcome = await Promise.race([parts.registry.releaseAll("orchestrator shutting down"), graceOver]);
    clearTimeout(graceTimer);
    if (outcome === "timeout") app.log.warn({ graceMs: SHUTDOWN_SESSION_GRACE_MS }, "sessions still stopping at shutdown; killing their workers");
    await parts.launcher.stopAll();
    await parts.sweeper.stop();
  });
}
