import type { Logger } from "pino";
import { ErrorCodes, TetherError, errorMessage, tetherError, type ErrorCode } from "../errors.js";
import type { RestoredFile, SnapshotStore } from "../snapshots/snapshot-store.js";
import { restoreWorkspace } from "../snapshots/workspace-snapshot.js";
import type { SessionSnapshot } from "./session-snapshot.js";
import type { WorkerSessionMessage } from "../workers/worker-connection.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import type { SessionLifecycle, StartKind, StartPhase } from "./session-lifecycle.js";
import type { WorkerSupply } from "./worker-supply.js";

/** What a start needs of its session. */
export interface StartHost {
  readonly id: string;
  readonly logger: Logger;
  readonly lifecycle: SessionLifecycle;
  readonly supply: WorkerSupply;
  readonly snapshots: SnapshotStore;
  /** What the session knows of its snapshot; decides what a resume restores. */
  readonly snapshot: SessionSnapshot;
  /** Events of the session's worker, once it is ready. */
  onWorkerMessage(worker: WorkerHandle, message: WorkerSessionMessage, raw: Uint8Array): void;
  onWorkerLost(worker: WorkerHandle, code: ErrorCode, message: string): void;
  /** The worker is ready (and, on a resume, the workspace restored): serve with it. */
  becameReady(worker: WorkerHandle, kind: StartKind, restoredFiles: number, startedAt: number): void;
  startFailed(kind: StartKind, error: TetherError): void;
}

/**
 * One start (the first, or a resume): gets a worker, follows it to ready,
 * restores the last snapshot on a resume (from the moment the worker joined,
 * while its kernel starts), and hands over to the session once both are done.
 * A resume reads the snapshot's manifest while the worker starts (a pooled
 * one is taken when free) and fails before the worker is ready when the
 * files are gone (410 SNAPSHOT_EXPIRED/MISSING, once) or the store cannot be
 * read (503). Rejects with the reason it failed (502/504), or
 * SESSION_STOPPED when the session was deleted meanwhile.
 */
export async function runStart(host: StartHost, kind: StartKind): Promise<void> {
  const startedAt = Date.now();
  const deleted = (): boolean => host.lifecycle.name === "deleted";
  const stoppedWhileStarting = (): TetherError => tetherError(ErrorCodes.SESSION_STOPPED, `Session '${host.id}' was deleted while starting.`);
  if (kind === "resume") host.lifecycle.to({ name: "starting", kind, phase: "queued" });
  const snapshot = kind === "resume" ? host.snapshots.open(host.id) : undefined;
  snapshot?.catch(() => undefined); // awaited below; not unhandled while the worker is obtained
  let worker: WorkerHandle | undefined;
  try {
    worker = await host.supply.obtain(deleted);
    if (deleted()) throw stoppedWhileStarting();
    const files = snapshot ? host.snapshot.filesToRestore(await snapshot) : undefined;
    const bound = worker;
    let joined!: () => void;
    const connected = new Promise<void>((resolve) => (joined = resolve));
    worker.setListener({
      phase: (phase) => {
        if (phase !== "ready") recordStartProgress(host.lifecycle, bound, phase);
        if (phase !== "launching") joined();
      },
      message: (message, raw) => host.onWorkerMessage(bound, message, raw),
      lost: (code, message) => host.onWorkerLost(bound, code, message),
    });
    recordStartProgress(host.lifecycle, worker, worker.state === "launching" || worker.state === "connected" ? worker.state : undefined);
    if (worker.state !== "launching") joined();
    worker.ready.catch(() => joined()); // a worker that fails before joining ends the restore's wait (its uploads then fail)
    // The files go in while the kernel starts (a worker takes uploads once joined), not after:
    // a 50 MiB restore took ~0.6 s after a ~1.9 s start. The session serves only once both are
    // done, so no user code runs before its files are in place.
    const restoring = files ? connected.then(() => restore(host, bound, files)) : Promise.resolve(0);
    restoring.catch(() => undefined); // read below, after ready: a start failure says more than an upload that found the socket gone
    await worker.ready;
    if (deleted()) throw stoppedWhileStarting();
    const restoredFiles = await restoring;
    if (worker.state !== "ready" || host.lifecycle.worker !== worker) {
      throw tetherError(ErrorCodes.WORKER_LOST, "The new worker was lost while its workspace was being restored.");
    }
    host.becameReady(worker, kind, restoredFiles, startedAt);
  } catch (error) {
    const tether = error instanceof TetherError ? error : tetherError(ErrorCodes.SESSION_START_FAILED, errorMessage(error), { cause: error });
    if (worker) void worker.stop(tether.message);
    if (deleted()) throw tether.code === ErrorCodes.SESSION_STOPPED ? tether : stoppedWhileStarting();
    host.startFailed(kind, tether);
    throw tether;
  }
}

/** Records start progress in the lifecycle: the worker the start got, and how far it is. */
export function recordStartProgress(lifecycle: SessionLifecycle, worker: WorkerHandle, phase: StartPhase | undefined): void {
  const state = lifecycle.current;
  if (state.name !== "starting" || (state.worker && state.worker !== worker)) return;
  if (state.worker === worker && (phase === undefined || phase === state.phase)) return;
  lifecycle.to({ ...state, worker, phase: phase ?? state.phase });
}

async function restore(host: StartHost, worker: WorkerHandle, files: AsyncIterable<RestoredFile>): Promise<number> {
  recordStartProgress(host.lifecycle, worker, "restoring");
  const startedAt = Date.now();
  const restored = await restoreWorkspace(files, worker);
  // Restored before the kernel is up: the start is back to waiting for it.
  if (worker.state === "connected") recordStartProgress(host.lifecycle, worker, "connected");
  host.logger.info({ restoredFiles: restored, restoreMs: Date.now() - startedAt, kernelReady: worker.state === "ready" }, "workspace restored");
  return restored;
}
