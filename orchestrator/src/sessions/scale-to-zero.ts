import type { Logger } from "pino";
import type { SessionStopReason } from "@tether/shared";
import type { SnapshotStore, SnapshotSummary } from "../snapshots/snapshot-store.js";
import { snapshotWorkspace } from "../snapshots/workspace-snapshot.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import { ErrorCodes, tetherError } from "../errors.js";
import type { SessionLifecycle } from "./session-lifecycle.js";

/**
 * At shutdown a snapshot gets this long; then the worker is stopped, which
 * fails the save (the previous snapshot stays: saves are atomic). The whole
 * shutdown must fit in fastify's 10 s close budget.
 */
export const SHUTDOWN_SNAPSHOT_MS = 5000;

export interface ScaleToZeroHost {
  readonly id: string;
  readonly logger: Logger;
  readonly lifecycle: SessionLifecycle;
  readonly snapshots: SnapshotStore;
  snapshotTaken(summary: SnapshotSummary): void;
  /** The worker is gone and the session `stopped` (unless it was deleted meanwhile). */
  stopped(): void;
}

/**
 * Scales a ready session to zero: `stopping` while the workspace is
 * snapshotted (a failed snapshot keeps the previous one), then `stopped`,
 * resumable by the next execute or file call. The worker is told to shut
 * down once its files are saved; the session does not wait for its process
 * to exit (Jupyter and the kernel take a second or more to go, measured:
 * an execute that came while stopping waited that long before its resume
 * even began).
 */
export function scaleToZero(host: ScaleToZeroHost, worker: WorkerHandle, stop: SessionStopReason): void {
  host.logger.info({ kind: stop.kind, reason: stop.message, launchId: worker.launchId }, "scaling the session to zero");
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => (settle = resolve));
  host.lifecycle.to({ name: "stopping", stop, settled }, stop.message);
  void (async () => {
    if (worker.serving) {
      const startedAt = Date.now();
      try {
        const saving = snapshotWorkspace(host.snapshots, host.id, worker);
        const { truncated, ...summary } = stop.kind === "orchestrator_shutdown" ? await withinShutdownBudget(saving) : await saving;
        host.snapshotTaken(summary);
        host.logger.info({ ...summary, snapshotMs: Date.now() - startedAt }, "workspace snapshotted");
        if (truncated) host.logger.warn({ files: summary.files }, "the workspace holds more files than a snapshot keeps; the rest are not in it");
      } catch (error) {
        host.logger.error({ err: error }, "the workspace snapshot failed; the previous one (if any) is kept");
      }
    }
    worker.stop(stop.message).catch((error: unknown) => host.logger.warn({ err: error }, "the stopped worker did not shut down cleanly"));
  })().finally(() => {
    const deleted = host.lifecycle.name === "deleted";
    if (!deleted) host.lifecycle.to({ name: "stopped", stop }, stop.message);
    settle();
    if (!deleted) host.stopped();
  });
}

function withinShutdownBudget<T>(saving: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(tetherError(ErrorCodes.SNAPSHOT_UNAVAILABLE, `The snapshot did not finish within ${SHUTDOWN_SNAPSHOT_MS} ms of the shutdown.`)), SHUTDOWN_SNAPSHOT_MS);
  });
  saving.catch(() => undefined); // settles (fails) once the worker is stopped
  return Promise.race([saving, late]).finally(() => clearTimeout(timer));
}
