import type { Logger } from "pino";
import type { ExecutionEvent, SessionInfo, SessionPhase, SessionStatus, SessionStopReason } from "@tether/shared";
import { DEFAULT_PROFILE } from "../config-profiles.js";
import { ErrorCodes, type ErrorCode, type TetherError } from "../errors.js";
import type { MetricsHooks } from "../metrics/hooks.js";
import type { SnapshotStore } from "../snapshots/snapshot-store.js";
import type { WorkerSessionMessage } from "../workers/worker-connection.js";
import type { WorkerHandle } from "../workers/worker-handle.js";
import { ExecutionQueue, type ExecutionRequest, type ExecutionSink } from "./execution-queue.js";
import { SessionClocks } from "./session-clocks.js";
import { assertKernelText, sessionErrors, textFieldsOf } from "./session-errors.js";
import { SessionFiles } from "./session-files.js";
import { describeSession } from "./session-info.js";
import { SessionLifecycle, phaseOf, statusOf, type StartKind } from "./session-lifecycle.js";
import { SessionSnapshot } from "./session-snapshot.js";
import { SessionEvents, type SessionEventLimits } from "./session-events.js";
import type { SessionReplication, SessionRestore } from "./session-replication.js";
import { statusNotice } from "./session-observers.js";
import { scaleToZero } from "./scale-to-zero.js";
import { runStart, type StartHost } from "./session-start.js";
import { WorkerBackpressure } from "./worker-backpressure.js";
import { WorkerSupply, type WorkerSource, type WorkerSupplyDeps } from "./worker-supply.js";

export type { ExecutionRequest, ExecutionSink } from "./execution-queue.js";
export type { SessionObserver } from "./session-observers.js";

export interface SessionDeps extends WorkerSupplyDeps {
  logger: Logger;
  /** Event log and execution record budgets. */
  events: SessionEventLimits;
  interruptGraceMs: number;
  snapshots: SnapshotStore;
  /** Seconds without executions before the session scales to zero. */
  idleTimeoutS: number;
  /** Longest one worker serves the session before it is stopped (snapshotted). */
  maxLifetimeMs: number;
  /** Called once the session is deleted, failed its first start with nobody holding its id, or (`moved`) went to another replica. */
  onDisposed(session: Session, moved?: boolean): void;
  /** Name of the worker profile its workers run with; default `default`. */
  profile?: string;
  metrics?: MetricsHooks;
}

const CALL_TIMEOUT_MS = 30_000;
const RESTART_TIMEOUT_MS = 120_000;

/**
 * One session: a facade over its lifecycle (session-lifecycle.ts), the
 * execution queue, the clocks, the files and the observers. Workers come and
 * go (scale to zero, worker lost); the session and its workspace files
 * (through snapshots) stay. Every execution ends with exactly one done,
 * whatever happens to the worker.
 */
export class Session {
  createdAt = new Date();
  lastActivityAt = new Date();
  kernel: SessionInfo["kernel"];
  /** The workspace snapshot: summary, expiry, whether a resume found it gone. */
  readonly snapshots: SessionSnapshot;
  /** Why the session is (or last was) stopped. */
  stopReason: SessionStopReason | undefined;
  private readonly lifecycle: SessionLifecycle;
  private readonly executions: ExecutionQueue;
  private readonly clocks: SessionClocks;
  /** Workspace files: list, delete, download, upload (a stopped session resumes first). */
  readonly files: SessionFiles;
  private readonly supply: WorkerSupply;
  /** What the session tells clients: the numbered event log, execution records, attached streams. */
  readonly events: SessionEvents;
  /**
   * Clients whose sockets are backed up hold the worker back; while it is not
   * read, the running execution's backstop does not count.
   */
  readonly backpressure: WorkerBackpressure;
  private startAttempt: Promise<void> | undefined;
  /** Set by a resume, taken by the first execution that runs after it. */
  private resumeNotice: { restoredFiles: number } | undefined;
  private deletion: Promise<void> | undefined;
  private readonly logger: Logger;
  /** The cluster layer, when there is one (TETHER_REDIS_URL). */
  private replication: SessionReplication | undefined;

  constructor(
    readonly id: string,
    readonly tenant: string,
    readonly metadata: Record<string, string>,
    private readonly deps: SessionDeps,
  ) {
    this.logger = deps.logger.child({ sessionId: id });
    this.events = new SessionEvents(deps.events);
    this.lifecycle = new SessionLifecycle({ name: "starting", kind: "create", phase: "queued" }, this.logger, (from, to, reason) => {
      deps.metrics?.sessionTransition(from.name, to.name);
      const notice = statusNotice(from, to, reason);
      if (notice) this.events.notice(notice);
      this.replication?.changed();
    });
    this.executions = new ExecutionQueue({
      logger: this.logger,
      interruptGraceMs: deps.interruptGraceMs,
      publish: (event, raw) => this.events.publish(event, raw),
      onBackstop: (requestId, backstopMs) => {
        const worker = this.lifecycle.worker;
        if (worker) this.onWorkerLost(worker, ErrorCodes.WORKER_LOST, `The worker did not end execution '${requestId}' within ${backstopMs} ms.`);
      },
      onFinished: (execution) => {
        this.replication?.execution(execution, "ended");
        this.afterExecution();
      },
      metrics: deps.metrics,
    });
    this.clocks = new SessionClocks({
      idleTimeoutS: deps.idleTimeoutS,
      maxLifetimeMs: deps.maxLifetimeMs,
      onIdle: () => {
        if (this.files.activeTransfers === 0) this.suspend("idle_timeout", `No activity for ${deps.idleTimeoutS} s.`);
      },
      // Busy: the running execution finishes first (pump stops the session then).
      onLifetimeExpired: () => this.pump(),
    });
    this.files = new SessionFiles({ serving: () => this.serving(), touch: () => this.touch() });
    this.backpressure = new WorkerBackpressure(() => this.lifecycle.servingWorker, (held) => this.executions.pauseBackstop(held));
    this.supply = new WorkerSupply(id, deps, this.logger);
    this.snapshots = new SessionSnapshot(id);
  }

  /** The client-visible status. */
  get state(): SessionStatus {
    return statusOf(this.lifecycle.current);
  }

  get phase(): SessionPhase {
    return phaseOf(this.lifecycle.current);
  }

  /** The worker serving the session, or starting for it. */
  get worker(): WorkerHandle | undefined {
    return this.lifecycle.worker;
  }

  /** Why the session failed, when it did. */
  get failure(): { code: string; message: string } | undefined {
    const state = this.lifecycle.current;
    return state.name === "failed" ? state.failure : undefined;
  }

  /**
   * Claims a pooled worker (`preferLaunchId` first: one another replica
   * claimed for this session), or a start slot, for the first start; throws
   * 429 over TETHER_MAX_CONCURRENT_STARTS.
   */
  reserveStart(preferLaunchId?: string): void {
    this.supply.reserve(preferLaunchId);
  }

  /** Where its current (or last) worker came from: the warm pool or a launch. */
  get workerSource(): WorkerSource | undefined {
    return this.supply.source;
  }

  /**
   * Starts the first worker; resolves once its kernel is ready, rejects with
   * 502/504 TetherErrors. Without `keepOnFailure` a failed session is
   * disposed (nobody else knows its id); with it, it stays `failed`.
   */
  start(options: { keepOnFailure?: boolean } = {}): Promise<void> {
    this.startAttempt ??= this.startRun("create", options.keepOnFailure ?? false);
    return this.startAttempt;
  }

  /** A start (`runStart`) in progress; its host is the session. */
  private startRun(kind: StartKind, keepOnFailure: boolean): Promise<void> {
    const host: StartHost = {
      ...{ id: this.id, logger: this.logger, lifecycle: this.lifecycle, supply: this.supply, snapshots: this.deps.snapshots, snapshot: this.snapshots },
      onWorkerMessage: (worker, message, raw) => this.onWorkerMessage(worker, message, raw),
      onWorkerLost: (worker, code, message) => this.onWorkerLost(worker, code, message),
      becameReady: (worker, readyKind, restoredFiles, startedAt) => this.serveWith(worker, readyKind, restoredFiles, startedAt),
      startFailed: (failedKind, error) => this.startFailed(failedKind, error, keepOnFailure),
    };
    return runStart(host, kind);
  }

  private serveWith(worker: WorkerHandle, kind: StartKind, restoredFiles: number, startedAt: number): void {
    this.kernel = worker.kernel;
    // Only now: the restore must not wait for a slow client.
    this.backpressure.applyTo(worker);
    if (kind === "resume") this.resumeNotice = { restoredFiles };
    this.lifecycle.to({ name: "ready", worker });
    this.logger.info({ kind, startMs: Date.now() - startedAt, workerStartMs: worker.startMs, launchId: worker.launchId }, kind === "create" ? "session ready" : "session resumed");
    this.clocks.armLifetime();
    this.pump();
    this.armIdle();
  }

  private startFailed(kind: StartKind, error: TetherError, keepOnFailure: boolean): void {
    this.clocks.clear();
    if (kind === "create") {
      this.lifecycle.to({ name: "failed", failure: { code: error.code, message: error.message } }, error.message);
      this.executions.endAll("worker_lost", { code: error.code, message: error.message });
      this.events.observers.end("failed", error.message);
      if (!keepOnFailure) this.deps.onDisposed(this);
      return;
    }
    const message = `The session could not be resumed: ${error.message}`;
    this.stopReason = { kind: "resume_failed", message, at: new Date().toISOString() };
    this.lifecycle.to({ name: "stopped", stop: this.stopReason }, message);
    this.executions.endAll(error.code.startsWith("TETHER_ERR_SNAPSHOT_") ? "cancelled" : "worker_lost", { code: error.code, message });
  }

  /** Resolves once a worker serves the session, resuming it when stopped. */
  private wake(): Promise<void> {
    const state = this.lifecycle.current;
    switch (state.name) {
      case "deleted":
        return Promise.reject(sessionErrors.deleted(this.id));
      case "ready":
      case "busy":
        return Promise.resolve();
      case "starting":
        return this.startAttempt ?? Promise.resolve();
      case "failed":
        return Promise.reject(sessionErrors.failed(this.id, this.failure?.message));
      case "stopping":
        return state.settled.then(() => this.wake());
      case "stopped":
        this.logger.info({ queued: this.executions.queued }, "resuming the session");
        this.startAttempt = this.startRun("resume", true);
        return this.startAttempt;
      default: {
        const unreachable: never = state;
        return unreachable;
      }
    }
  }

  private onWorkerMessage(worker: WorkerHandle, message: WorkerSessionMessage, raw: Uint8Array): void {
    if (worker !== this.lifecycle.worker) return;
    switch (message.type) {
      case "worker_ready":
      case "worker_failed":
        return; // the launched worker handles both
      case "protocol_error":
        this.logger.warn({ code: message.code, message: message.message, requestId: message.requestId }, "the worker refused a frame");
        return;
      default:
        this.route(message, raw);
    }
  }

  private route(event: ExecutionEvent, raw: Uint8Array): void {
    if (event.requestId === null) this.events.publish(event, raw);
    else this.executions.route(event, event.requestId, raw);
  }

  /** The worker is gone after ready: every execution ends worker_lost; the session stops, resumable. */
  private onWorkerLost(worker: WorkerHandle, _code: ErrorCode, message: string): void {
    const state = this.lifecycle.current;
    // While starting, the start in progress notices and fails (or retries) itself.
    if (worker !== this.lifecycle.worker || state.name === "starting") return;
    this.clocks.clear();
    this.logger.warn({ launchId: worker.launchId, reason: message }, "the session's worker was lost");
    this.stopReason = { kind: "worker_lost", message, at: new Date().toISOString() };
    this.lifecycle.to({ name: "stopped", stop: this.stopReason }, message);
    this.executions.endAll("worker_lost", { code: ErrorCodes.WORKER_LOST, message });
    void worker.stop(message);
  }

  /**
   * Queues an execution (while starting too: it runs once the kernel is
   * ready; on a stopped session it resumes it). Its events, ending with
   * exactly one done, go to `sink` and to every observer.
   */
  /**
   * Refuses a client's requestId the session still keeps a record of
   * (queued, running, or ended within retention): a POST retried after a
   * dropped answer or a 503 must not run its code twice (the first may have
   * been queued, and run by the next owner). Checked before anything is stored.
   */
  assertNewRequestId(requestId: string): void {
    const known = this.events.records.get(requestId);
    if (known !== undefined && known !== "expired") throw sessionErrors.requestIdTaken(this.id, requestId, known.view().status);
  }

  execute(request: ExecutionRequest, sink: ExecutionSink | undefined): void {
    this.assertNotEnded();
    assertKernelText(textFieldsOf(request));
    const execution = this.executions.add(request, sink);
    this.events.records.create(request.requestId);
    this.replication?.execution(request, "queued");
    this.touch();
    const state = this.lifecycle.name;
    if (this.executions.running || (state !== "ready" && state !== "busy")) {
      this.executions.emit(execution, { type: "status", requestId: request.requestId, state: "queued" }, undefined);
    }
    // A failed resume ends the queued executions itself.
    if (state === "stopped" || state === "stopping") this.wake().catch(() => undefined);
    this.pump();
  }

  inputReply(requestId: string, value: string): void {
    assertKernelText([["value", value]]);
    this.executions.takeInputReply(requestId);
    this.lifecycle.worker?.send({ type: "input_reply", requestId, value });
  }

  /** Interrupts the running execution; a queued one named by `requestId` is cancelled instead. Nothing runs on a stopped session. */
  async interrupt(requestId?: string): Promise<void> {
    this.assertNotEnded();
    if (requestId !== undefined && !this.executions.interruptTarget(requestId)) return;
    if (this.lifecycle.name === "stopped" || this.lifecycle.name === "stopping") return;
    await this.servingNow().call("interrupt", {}, CALL_TIMEOUT_MS);
  }

  /** Restarts the kernel (state is lost); resolves once the new kernel is idle. A stopped session gets a fresh kernel on resume anyway. */
  async restart(): Promise<void> {
    this.assertNotEnded();
    if (this.lifecycle.name === "stopped" || this.lifecycle.name === "stopping") return;
    const worker = this.servingNow();
    this.logger.info("restarting the kernel on request");
    await worker.call("restart", {}, RESTART_TIMEOUT_MS);
  }

  private pump(): void {
    const state = this.lifecycle.current;
    if (this.executions.running || (state.name !== "ready" && state.name !== "busy")) return;
    if (this.clocks.lifetimeExpired) {
      this.suspend("max_lifetime", `The worker reached TETHER_MAX_SESSION_LIFETIME_S (${Math.round(this.deps.maxLifetimeMs / 1000)} s).`);
      return;
    }
    const worker = state.worker;
    // A closed worker is about to stop the session, which ends the queue.
    if (!worker.serving) return;
    this.executions.startNext((next) => {
      this.clocks.clearIdle();
      if (state.name === "ready") this.lifecycle.to({ name: "busy", worker });
      this.events.started(next);
      if (this.resumeNotice) this.events.resumedBy(next, this.resumeNotice.restoredFiles);
      this.resumeNotice = undefined;
      this.replication?.execution(next, "running");
      worker.send({ type: "execute", requestId: next.requestId, code: next.code, timeoutMs: next.timeoutMs, stdin: next.stdin });
    });
  }

  private afterExecution(): void {
    this.lastActivityAt = new Date();
    const state = this.lifecycle.current;
    if (state.name === "busy" && !this.executions.running) this.lifecycle.to({ name: "ready", worker: state.worker });
    this.pump();
    this.armIdle();
  }

  private async serving(): Promise<WorkerHandle> {
    this.assertNotEnded();
    if (this.lifecycle.name === "starting" && !this.startAttempt) throw sessionErrors.notReady(this.id);
    await this.wake();
    this.touch();
    return this.servingNow();
  }

  /** Snapshots the workspace, stops the worker; the session shows `stopped` and resumes on the next execute. */
  private suspend(kind: SessionStopReason["kind"], message: string): void {
    const state = this.lifecycle.current;
    if (state.name !== "ready" || this.executions.running) return;
    this.clocks.clear();
    this.stopReason = { kind, message, at: new Date().toISOString() };
    scaleToZero(
      {
        ...{ id: this.id, logger: this.logger, lifecycle: this.lifecycle, snapshots: this.deps.snapshots },
        snapshotTaken: (summary) => this.snapshots.taken(summary),
        // Executions that arrived while stopping resume the session now (not at shutdown).
        stopped: (stop) => {
          this.stopReason = stop;
          if (!this.executions.idle && kind !== "orchestrator_shutdown") this.wake().catch(() => undefined);
        },
      },
      state.worker,
      this.stopReason,
    );
  }

  private touch(): void {
    this.lastActivityAt = new Date();
    this.armIdle();
  }

  private armIdle(): void {
    this.clocks.clearIdle();
    if (this.lifecycle.name === "ready" && this.executions.idle && this.files.activeTransfers === 0) this.clocks.armIdle();
  }

  /** Reports to the cluster layer from now on. */
  replicate(replication: SessionReplication): void {
    this.replication = replication;
  }

  /**
   * Continues a session another replica served (it died, or handed the
   * session over): its log and records, its state, and with a serving worker
   * the executions that worker runs and the ones queued behind.
   */
  adopt(restored: SessionRestore): void {
    ({ createdAt: this.createdAt, lastActivityAt: this.lastActivityAt, kernel: this.kernel, lastStop: this.stopReason } = restored);
    this.snapshots.adopt(restored.snapshot);
    this.events.restore(restored.events, restored.lastSeq, restored.executions);
    const state = restored.state;
    if (state.kind === "stopped") return this.lifecycle.adopt({ name: "stopped", stop: state.stop });
    if (state.kind === "failed") return this.lifecycle.adopt({ name: "failed", failure: state.failure });
    const worker = state.worker;
    worker.setListener({ phase: () => undefined, message: (message, raw) => this.onWorkerMessage(worker, message, raw), lost: (code, message) => this.onWorkerLost(worker, code, message) });
    this.lifecycle.adopt({ name: state.running ? "busy" : "ready", worker });
    if (state.running) this.executions.adoptRunning(state.running);
    for (const request of state.queued) this.executions.add(request, undefined);
    this.backpressure.applyTo(worker);
    this.clocks.armLifetime();
    this.pump();
    this.armIdle();
  }

  /**
   * This replica lets the session go (it hands it over, or another replica
   * took it): the worker carries on without us, clients are told to
   * reconnect and waiting requests that it moved. Nothing is deleted.
   */
  detach(reason: string): void {
    if (this.lifecycle.name === "deleted") return;
    this.clocks.clear();
    this.executions.disarm();
    const worker = this.lifecycle.worker;
    this.lifecycle.to({ name: "deleted", reason }, reason);
    if (worker?.state === "ready") worker.handOver(reason);
    else void worker?.stop(reason);
    this.events.records.abandonAll();
    this.events.observers.end("moved", reason);
    this.deps.onDisposed(this, true);
  }

  /** Deletes the session: stops its worker, ends executions in flight with "cancelled", forgets its snapshot (unless `keepSnapshot`). Idempotent. */
  stop(reason: string, options: { keepSnapshot?: boolean } = {}): Promise<void> {
    this.deletion ??= this.delete(reason, options.keepSnapshot ?? false);
    return this.deletion;
  }

  /** Shutdown: an idle ready session scales to zero (its snapshot outlives this process), a running one stops its worker; snapshots are kept. */
  async release(reason: string): Promise<void> {
    const state = await this.suspendForShutdown(reason);
    if (state !== "stopped" && state !== "failed") await this.stop(reason, { keepSnapshot: true });
  }

  /** Shutdown: scales an idle ready session to zero and waits for its snapshot; anything else is left as it is. Returns the state after. */
  async suspendForShutdown(reason: string): Promise<SessionLifecycle["name"]> {
    this.suspend("orchestrator_shutdown", reason);
    const state = this.lifecycle.current;
    if (state.name === "stopping") await state.settled;
    return this.lifecycle.name;
  }

  private async delete(reason: string, keepSnapshot: boolean): Promise<void> {
    this.clocks.clear();
    const previous = this.lifecycle.current;
    const worker = this.lifecycle.worker;
    this.lifecycle.to({ name: "deleted", reason }, reason);
    this.executions.endAll("cancelled", { code: ErrorCodes.SESSION_STOPPED, message: `The session was stopped: ${reason}` });
    this.events.observers.end("stopped", reason);
    try {
      await Promise.allSettled([worker?.stop(reason), this.supply.release(reason), previous.name === "stopping" ? previous.settled : undefined]);
      if (!keepSnapshot) await this.deps.snapshots.delete(this.id).catch((error: unknown) => this.logger.warn({ err: error }, "could not delete the snapshot"));
    } finally {
      this.deps.onDisposed(this);
    }
  }

  private assertNotEnded(): void {
    if (this.lifecycle.name === "deleted") throw sessionErrors.deleted(this.id);
    if (this.lifecycle.name === "failed") throw sessionErrors.failed(this.id, this.failure?.message);
  }

  /** The serving worker, connected; else 502 WORKER_LOST (or 409 NOT_READY while starting). */
  private servingNow(): WorkerHandle {
    if (this.lifecycle.name === "starting") throw sessionErrors.notReady(this.id);
    const worker = this.lifecycle.servingWorker;
    if (!worker?.serving) throw sessionErrors.workerNotConnected();
    return worker;
  }

  /** The worker profile its workers run with. */
  get profile(): string {
    return this.deps.profile ?? DEFAULT_PROFILE;
  }

  /** Seconds without activity before the session scales to zero. */
  get idleTimeoutS(): number {
    return this.clocks.idleTimeoutS;
  }

  info(): SessionInfo {
    return describeSession(this);
  }
}
