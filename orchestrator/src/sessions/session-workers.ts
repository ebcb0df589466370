import type { SessionInfo, SessionStopReason } from "@tether/shared";
import type { TetherError } from "../errors.js";
import type { SnapshotStore } from "../snapshots/snapshot-store.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import { scaleToZero } from "./scale-to-zero.js";
import { sessionErrors } from "./session-errors.js";
import type { StartKind } from "./session-lifecycle.js";
import type { SessionParts } from "./session-executions.js";
import type { SessionSnapshot } from "./session-snapshot.js";
import { runStart, type StartHost } from "./session-start.js";
import type { SessionWorkerEvents } from "./session-worker-events.js";
import type { WorkerBackpressure } from "./worker-backpressure.js";
import type { WorkerSupply } from "./worker-supply.js";

/** What bringing workers to a session, and letting them go, needs of it. */
export interface SessionWorkersDeps extends SessionParts {
  supply: WorkerSupply;
  snapshots: SnapshotStore;
  snapshot: SessionSnapshot;
  backpressure: WorkerBackpressure;
  workerEvents: SessionWorkerEvents;
  /** A worker became ready: its kernel is the session's now. */
  kernel(kernel: SessionInfo["kernel"]): void;
  /** Why the session is stopped now. */
  stopped(stop: SessionStopReason): void;
  /** A resume's worker serves the session: the next execution to run says so. */
  resumed(restoredFiles: number): void;
  /** Sends the next queued execution, when one waits. */
  pump(): void;
  /** Workspace transfers in progress: the session is not idle while one runs. */
  activeTransfers(): number;
  /** Activity: pushes the idle clock back. */
  touch(): void;
  /** The first start failed and nobody else holds the session's id. */
  disposed(): void;
}

/**
 * The workers that serve a session, one after another: the first start, a
 * resume when a stopped session is needed (wake), what each start's outcome
 * does, and scaling to zero. Also the checks made before using the worker.
 */
export class SessionWorkers {
  private startAttempt: Promise<void> | undefined;

  constructor(private readonly deps: SessionWorkersDeps) {}

  /** The first start, once (later calls get the same attempt). */
  start(keepOnFailure: boolean): Promise<void> {
    this.startAttempt ??= this.startRun("create", keepOnFailure);
    return this.startAttempt;
  }

  /** Resolves once a worker serves the session, resuming it when stopped. */
  wake(): Promise<void> {
    const state = this.deps.lifecycle.current;
    switch (state.name) {
      case "deleted":
        return Promise.reject(sessionErrors.deleted(this.deps.id));
      case "ready":
      case "busy":
        return Promise.resolve();
      case "starting":
        return this.startAttempt ?? Promise.resolve();
      case "failed":
        return Promise.reject(sessionErrors.failed(this.deps.id, state.failure.message));
      case "stopping":
        return state.settled.then(() => this.wake());
      case "stopped":
        this.deps.logger.info({ queued: this.deps.queue.queued }, "resuming the session");
        this.startAttempt = this.startRun("resume", true);
        return this.startAttempt;
      default: {
        const unreachable: never = state;
        return unreachable;
      }
    }
  }

  /** A worker serving the session now, resuming a stopped session first. */
  async serving(): Promise<WorkerHandle> {
    this.assertNotEnded();
    if (this.deps.lifecycle.name === "starting" && !this.startAttempt) throw sessionErrors.notReady(this.deps.id);
    await this.wake();
    this.deps.touch();
    return this.servingNow();
  }

  /** The serving worker, connected; else 502 WORKER_LOST (or 409 NOT_READY while starting). */
  servingNow(): WorkerHandle {
    const { lifecycle, id } = this.deps;
    if (lifecycle.name === "starting") throw sessionErrors.notReady(id);
    const worker = lifecycle.servingWorker;
    if (!worker?.serving) throw sessionErrors.workerNotConnected();
    return worker;
  }

  /** Refuses a call on a deleted (SESSION_STOPPED) or failed (SESSION_FAILED) session. */
  assertNotEnded(): void {
    const state = this.deps.lifecycle.current;
    if (state.name === "deleted") throw sessionErrors.deleted(this.deps.id);
    if (state.name === "failed") throw sessionErrors.failed(this.deps.id, state.failure.message);
  }

  /** A worker serves the session from now on: its lifetime starts, queued executions go out, the idle clock runs. */
  served(): void {
    this.deps.clocks.armLifetime();
    this.deps.pump();
    this.armIdle();
  }

  /** The idle clock runs only while the session is ready with nothing to do. */
  armIdle(): void {
    const { clocks, lifecycle, queue } = this.deps;
    clocks.clearIdle();
    if (lifecycle.name === "ready" && queue.idle && this.deps.activeTransfers() === 0) clocks.armIdle();
  }

  /** Snapshots the workspace, stops the worker; the session shows `stopped` and resumes on the next execute. */
  suspend(kind: SessionStopReason["kind"], message: string): void {
    const { lifecycle, queue } = this.deps;
    const state = lifecycle.current;
    if (state.name !== "ready" || queue.running) return;
    this.deps.clocks.clear();
    const stopReason: SessionStopReason = { kind, message, at: new Date().toISOString() };
    this.deps.stopped(stopReason);
    scaleToZero(
      {
        ...{ id: this.deps.id, logger: this.deps.logger, lifecycle, snapshots: this.deps.snapshots },
        snapshotTaken: (summary) => this.deps.snapshot.taken(summary),
        // Executions that arrived while stopping resume the session now (not at shutdown).
        stopped: (stop) => {
          this.deps.stopped(stop);
          if (!queue.idle && kind !== "orchestrator_shutdown") this.wake().catch(() => undefined);
        },
      },
      state.worker,
      stopReason,
    );
  }

  /** A start (`runStart`) in progress; its host is the session's parts. */
  private startRun(kind: StartKind, keepOnFailure: boolean): Promise<void> {
    const { workerEvents } = this.deps;
    const host: StartHost = {
      ...{ id: this.deps.id, logger: this.deps.logger, lifecycle: this.deps.lifecycle, supply: this.deps.supply, snapshots: this.deps.snapshots, snapshot: this.deps.snapshot },
      onWorkerMessage: (worker, message, raw) => workerEvents.message(worker, message, raw),
      onWorkerLost: (worker, code, message) => workerEvents.lost(worker, code, message),
      becameReady: (worker, readyKind, restoredFiles, startedAt) => this.serveWith(worker, readyKind, restoredFiles, startedAt),
      startFailed: (failedKind, error) => this.startFailed(failedKind, error, keepOnFailure),
    };
    return runStart(host, kind);
  }

  private serveWith(worker: WorkerHandle, kind: StartKind, restoredFiles: number, startedAt: number): void {
    this.deps.kernel(worker.kernel);
    // Only now: the restore must not wait for a slow client.
    this.deps.backpressure.applyTo(worker);
    if (kind === "resume") this.deps.resumed(restoredFiles);
    this.deps.lifecycle.to({ name: "ready", worker });
    this.deps.logger.info({ kind, startMs: Date.now() - startedAt, workerStartMs: worker.startMs, launchId: worker.launchId }, kind === "create" ? "session ready" : "session resumed");
    this.served();
  }

  private startFailed(kind: StartKind, error: TetherError, keepOnFailure: boolean): void {
    const { lifecycle, queue } = this.deps;
    this.deps.clocks.clear();
    if (kind === "create") {
      lifecycle.to({ name: "failed", failure: { code: error.code, message: error.message } }, error.message);
      queue.endAll("worker_lost", { code: error.code, message: error.message });
      this.deps.events.observers.end("failed", error.message);
      if (!keepOnFailure) this.deps.disposed();
      return;
    }
    const message = `The session could not be resumed: ${error.message}`;
    const stop: SessionStopReason = { kind: "resume_failed", message, at: new Date().toISOString() };
    this.deps.stopped(stop);
    lifecycle.to({ name: "stopped", stop }, message);
    queue.endAll(error.code.startsWith("TETHER_ERR_SNAPSHOT_") ? "cancelled" : "worker_lost", { code: error.code, message });
  }
}
