import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type {
  DoneEvent,
  ExecutionEvent,
  ExecutionStatus,
  FileListResponse,
  SessionInfo,
  SessionPhase,
  SessionResumed,
  SessionStatusMessage,
  SessionStopReason,
  StdinMode,
} from "@tether/shared";
import { ErrorCodes, TetherError, tetherError, type ErrorCode } from "../errors.js";
import type { WarmPool } from "../pool/warm-pool.js";
import type { SnapshotStore, SnapshotSummary } from "../snapshots/snapshot-store.js";
import { restoreWorkspace, snapshotWorkspace } from "../snapshots/workspace-snapshot.js";
import type { WorkerConnection, WorkerSessionMessage } from "../worker-connection.js";
import type { LaunchedWorker } from "./launched-worker.js";
import type { StartLimiter, StartSlot } from "./start-limiter.js";

/**
 * `starting → ready ⇄ busy → stopped` (idle, max lifetime, worker lost; the
 * next execute resumes: `stopped → starting → ready`), or `failed` when the
 * first start failed. A deleted session ends `stopped` and leaves the registry.
 */
export type SessionState = "starting" | "ready" | "busy" | "stopped" | "failed";

/** Where one execution's events go besides the session's observers: the REST fold. */
export interface ExecutionSink {
  /** `raw` is the worker's original frame when there is one (relay it as is); undefined for events the orchestrator made. */
  deliver(event: ExecutionEvent, raw: Buffer | undefined): void;
  /** This execution resumed a stopped session on a new worker; comes before its other events reach the worker. */
  resumed?(notice: SessionResumed): void;
}

/** A client attached to the whole session (websocket streams): sees every execution's events, phase changes and the session's end. */
export interface SessionObserver {
  deliverSessionEvent(event: ExecutionEvent, raw: Buffer | undefined): void;
  /** session_status on every phase change; session_resumed before a resuming execution's events. */
  deliverNotice(notice: SessionStatusMessage | SessionResumed): void;
  /** The session is gone (deleted) or its first start failed. */
  sessionEnded(state: "stopped" | "failed", reason: string): void;
}

export interface ExecutionRequest {
  requestId: string;
  code: string;
  timeoutMs: number;
  stdin: StdinMode;
}

export interface SessionDeps {
  logger: Logger;
  interruptGraceMs: number;
  limiter: StartLimiter;
  /** Where new sessions and resumes get a worker first; undefined without a pool. */
  pool: WarmPool | undefined;
  snapshots: SnapshotStore;
  /** A new, unstarted worker launched for `sessionId`. */
  createWorker(sessionId: string): LaunchedWorker;
  /** Seconds without executions before the session scales to zero. */
  idleTimeoutS: number;
  /** Longest one worker serves the session before it is stopped (snapshotted). */
  maxLifetimeMs: number;
  /** Called once the session is deleted, or failed its first start with nobody holding its id. */
  onDisposed(session: Session): void;
}

interface Execution extends ExecutionRequest {
  sink: ExecutionSink | undefined;
  waitingForInput: boolean;
  startedAt: number | undefined;
  backstop: NodeJS.Timeout | undefined;
  /** Runs on a worker that resumed the session: its done says stateLost. */
  resumed: boolean;
}

type StartKind = "create" | "resume";

/**
 * Beyond the worker's own timeout + grace: a worker silent this much longer is
 * considered lost. It must exceed the worker's worst recovery after a timeout
 * (a restart that stays silent for 10 s, then a new kernel within 30 s), or a
 * slow restart is misreported as worker_lost.
 */
const BACKSTOP_EXTRA_MS = 60_000;
const MAX_QUEUED_EXECUTIONS = 1000;
const CALL_TIMEOUT_MS = 30_000;
const RESTART_TIMEOUT_MS = 120_000;
/** setTimeout's ceiling (~24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One session: the in-order queue of executions it runs one at a time, and
 * the worker serving it right now, if any. Workers come and go (scale to
 * zero, worker lost); the session and its workspace files (through
 * snapshots) stay. Every execution ends with exactly one done, whatever
 * happens to the worker.
 */
export class Session {
  state: SessionState = "starting";
  phase: SessionPhase = "queued";
  readonly createdAt = new Date();
  lastActivityAt = new Date();
  kernel: SessionInfo["kernel"];
  failure: { code: string; message: string } | undefined;
  stopReason: SessionStopReason | undefined;
  snapshot: SnapshotSummary | undefined;
  private worker: LaunchedWorker | undefined;
  /** From reserveStart(): the first start's pool worker or start slot. */
  private reserved: { worker: LaunchedWorker } | { slot: StartSlot } | undefined;
  private startAttempt: Promise<void> | undefined;
  private suspending: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Set by a resume, taken by the first execution that runs after it. */
  private resumeNotice: { restoredFiles: number } | undefined;
  /** Clients whose sockets are backed up (see pauseWorker). */
  private readonly workerPausers = new Set<object>();
  private current: Execution | undefined;
  private readonly queue: Execution[] = [];
  private readonly inFlight = new Map<string, Execution>();
  private readonly observers = new Set<SessionObserver>();
  private idleTimer: NodeJS.Timeout | undefined;
  private lifetimeTimer: NodeJS.Timeout | undefined;
  private lifetimeExpired = false;
  private activeTransfers = 0;
  private readonly logger: Logger;

  constructor(
    readonly id: string,
    readonly tenant: string,
    readonly metadata: Record<string, string>,
    private readonly deps: SessionDeps,
  ) {
    this.logger = deps.logger.child({ sessionId: id });
  }

  /**
   * Claims a pooled worker, or a start slot, for the first start: synchronous,
   * so a create over TETHER_MAX_CONCURRENT_STARTS is refused (429) before any
   * answer. A claim does no process or network work.
   */
  reserveStart(): void {
    const claimed = this.deps.pool?.claim();
    if (claimed) {
      this.reserved = { worker: claimed };
      this.logger.info({ launchId: claimed.launchId, workerState: claimed.state }, "claimed a pooled worker");
      return;
    }
    const slot = this.deps.limiter.tryAcquire();
    if (!slot) {
      throw tetherError(ErrorCodes.SESSION_START_LIMIT, `${this.deps.limiter.max} workers are already starting (TETHER_MAX_CONCURRENT_STARTS).`, {
        retryAfterS: this.deps.limiter.retryAfterS(),
        hint: "Retry after the Retry-After seconds, or raise TETHER_MAX_CONCURRENT_STARTS / TETHER_POOL_SIZE.",
      });
    }
    this.reserved = { slot };
  }

  /**
   * Starts the first worker; resolves once its kernel is ready, rejects with
   * 502/504 TetherErrors. Without `keepOnFailure` a failed session is
   * disposed (nobody else knows its id); with it, it stays `failed`.
   */
  start(options: { keepOnFailure?: boolean } = {}): Promise<void> {
    this.startAttempt ??= this.runStart("create", options.keepOnFailure ?? false);
    return this.startAttempt;
  }

  private async runStart(kind: StartKind, keepOnFailure = true): Promise<void> {
    const startedAt = Date.now();
    this.transition("starting");
    this.setPhase("queued");
    let worker: LaunchedWorker | undefined;
    try {
      worker = await this.obtainWorker();
      if (this.closing) throw this.stoppedWhileStarting();
      this.worker = worker;
      const bound = worker;
      worker.setListener({
        phase: (phase) => {
          if (this.worker === bound && this.state === "starting" && phase !== "ready") this.setPhase(phase);
        },
        message: (message, raw) => this.onWorkerMessage(bound, message, raw),
        lost: (code, message) => this.onWorkerLost(bound, code, message),
      });
      if (worker.state === "launching" || worker.state === "connected") this.setPhase(worker.state);
      await worker.ready;
      if (this.closing) throw this.stoppedWhileStarting();
      let restoredFiles = 0;
      if (kind === "resume") restoredFiles = await this.restore(worker);
      if (worker.state !== "ready" || this.worker !== worker) {
        throw tetherError(ErrorCodes.WORKER_LOST, "The new worker was lost while its workspace was being restored.");
      }
      this.kernel = worker.kernel;
      // Only now: the restore above must not wait for a slow client.
      for (const pauser of this.workerPausers) worker.connection?.pause(pauser);
      if (kind === "resume") this.resumeNotice = { restoredFiles };
      this.lifetimeExpired = false;
      this.transition("ready");
      this.setPhase("ready");
      this.logger.info({ kind, startMs: Date.now() - startedAt, workerStartMs: worker.startMs, launchId: worker.launchId }, kind === "create" ? "session ready" : "session resumed");
      this.armLifetime();
      this.pump();
      this.armIdle();
    } catch (error) {
      const tether = error instanceof TetherError ? error : tetherError(ErrorCodes.SESSION_START_FAILED, (error as Error).message, { cause: error });
      if (worker) {
        if (this.worker === worker) this.worker = undefined;
        void worker.stop(tether.message);
      }
      if (this.closing) throw tether.code === ErrorCodes.SESSION_STOPPED ? tether : this.stoppedWhileStarting();
      this.startFailed(kind, tether, keepOnFailure);
      throw tether;
    }
  }

  /** The reserved worker or slot, else a pooled worker, else a new launch once a start slot is free. */
  private async obtainWorker(): Promise<LaunchedWorker> {
    const reserved = this.reserved;
    this.reserved = undefined;
    if (reserved && "worker" in reserved) return reserved.worker;
    let slot = reserved?.slot;
    if (!slot) {
      const claimed = this.deps.pool?.claim();
      if (claimed) {
        this.logger.info({ launchId: claimed.launchId, workerState: claimed.state }, "claimed a pooled worker");
        return claimed;
      }
      slot = await this.deps.limiter.acquire();
    }
    if (this.closing) {
      slot();
      throw this.stoppedWhileStarting();
    }
    const worker = this.deps.createWorker(this.id);
    const release = slot;
    worker.ready.then(release, release);
    worker.start();
    return worker;
  }

  private async restore(worker: LaunchedWorker): Promise<number> {
    const connection = worker.connection;
    if (!connection) return 0;
    this.setPhase("restoring");
    const startedAt = Date.now();
    try {
      const restored = await restoreWorkspace(this.deps.snapshots, this.id, connection);
      this.logger.info({ restoredFiles: restored, restoreMs: Date.now() - startedAt }, "workspace restored");
      return restored;
    } catch (error) {
      // A worker lost while restoring fails the resume (checked by the caller); a refused file does not.
      this.logger.warn({ err: error }, "the workspace could not be fully restored");
      return 0;
    }
  }

  private startFailed(kind: StartKind, error: TetherError, keepOnFailure: boolean): void {
    this.clearTimers();
    if (kind === "create") {
      this.failure = { code: error.code, message: error.message };
      this.transition("failed", error.message);
      this.setPhase("failed", error.message);
      this.endAll("worker_lost", { code: error.code, message: error.message });
      for (const observer of this.observers) observer.sessionEnded("failed", error.message);
      this.observers.clear();
      if (!keepOnFailure) this.deps.onDisposed(this);
      return;
    }
    const message = `The session could not be resumed: ${error.message}`;
    this.endAll("worker_lost", { code: error.code, message });
    this.stopReason = { kind: "resume_failed", message, at: new Date().toISOString() };
    this.transition("stopped", message);
    this.setPhase("stopped", message);
  }

  private stoppedWhileStarting(): TetherError {
    return tetherError(ErrorCodes.SESSION_STOPPED, `Session '${this.id}' was deleted while starting.`);
  }

  /** Resolves once a worker serves the session, resuming it when stopped. */
  private wake(): Promise<void> {
    if (this.closing) return Promise.reject(tetherError(ErrorCodes.SESSION_STOPPED, `Session '${this.id}' was deleted.`));
    switch (this.state) {
      case "ready":
      case "busy":
        return Promise.resolve();
      case "starting":
        return this.startAttempt ?? Promise.resolve();
      case "failed":
        return Promise.reject(this.failedError());
      case "stopped":
        if (this.suspending) return this.suspending.then(() => this.wake());
        this.logger.info({ queued: this.queue.length }, "resuming the session");
        this.startAttempt = this.runStart("resume");
        return this.startAttempt;
      default: {
        const unreachable: never = this.state;
        return unreachable;
      }
    }
  }

  // ---- worker events -------------------------------------------------------

  private onWorkerMessage(worker: LaunchedWorker, message: WorkerSessionMessage, raw: Buffer): void {
    if (worker !== this.worker) return;
    switch (message.type) {
      case "worker_ready":
      case "worker_failed":
        // The launched worker handles both.
        return;
      case "protocol_error":
        this.logger.warn({ code: message.code, message: message.message, requestId: message.requestId }, "the worker refused a frame");
        return;
      case "stream":
      case "display":
      case "result":
      case "error":
      case "clear_output":
      case "input_request":
      case "status":
      case "kernel_died":
      case "done":
        this.route(message, raw);
        return;
      default: {
        const unreachable: never = message;
        return unreachable;
      }
    }
  }

  /** The worker is gone after ready: every execution ends worker_lost; the session stops, resumable. */
  private onWorkerLost(worker: LaunchedWorker, _code: ErrorCode, message: string): void {
    if (worker !== this.worker) return;
    // While resuming, the start in progress notices and fails the resume.
    if (this.state === "starting") return;
    this.worker = undefined;
    this.clearTimers();
    this.logger.warn({ launchId: worker.launchId, reason: message }, "the session's worker was lost");
    this.stopReason = { kind: "worker_lost", message, at: new Date().toISOString() };
    this.transition("stopped", message);
    this.endAll("worker_lost", { code: ErrorCodes.WORKER_LOST, message });
    this.setPhase("stopped", message);
    void worker.stop(message);
  }

  private route(event: ExecutionEvent, raw: Buffer): void {
    const requestId = event.requestId;
    if (requestId === null) {
      for (const observer of this.observers) observer.deliverSessionEvent(event, raw);
      return;
    }
    const execution = this.inFlight.get(requestId);
    if (!execution) {
      this.logger.debug({ requestId, type: event.type }, "event for no execution in flight; dropped");
      return;
    }
    if (event.type === "done") {
      // The kernel this execution ran on is not the one earlier executions used.
      if (execution.resumed && !event.stateLost) this.finish(execution, { ...event, stateLost: true }, undefined);
      else this.finish(execution, event, raw);
      return;
    }
    if (event.type === "input_request") execution.waitingForInput = true;
    this.emit(execution, event, raw);
  }

  private emit(execution: Execution, event: ExecutionEvent, raw: Buffer | undefined): void {
    execution.sink?.deliver(event, raw);
    for (const observer of this.observers) observer.deliverSessionEvent(event, raw);
  }

  // ---- executions ----------------------------------------------------------

  /**
   * Queues an execution (while starting too: it runs once the kernel is
   * ready; on a stopped session it resumes it). Its events, ending with
   * exactly one done, go to `sink` and to every observer.
   */
  execute(request: ExecutionRequest, sink: ExecutionSink | undefined): void {
    this.assertNotEnded();
    if (this.inFlight.has(request.requestId)) {
      throw tetherError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `An execution with requestId '${request.requestId}' is already in flight.`);
    }
    if (this.queue.length >= MAX_QUEUED_EXECUTIONS) {
      throw tetherError(ErrorCodes.SESSION_QUEUE_FULL, `The session already has ${MAX_QUEUED_EXECUTIONS} executions queued.`);
    }
    const execution: Execution = { ...request, sink, waitingForInput: false, startedAt: undefined, backstop: undefined, resumed: false };
    this.inFlight.set(request.requestId, execution);
    this.queue.push(execution);
    this.touch();
    if (this.current || (this.state !== "ready" && this.state !== "busy")) {
      this.emit(execution, { type: "status", requestId: request.requestId, state: "queued" }, undefined);
    }
    // A failed resume ends the queued executions itself.
    if (this.state === "stopped") this.wake().catch(() => undefined);
    this.pump();
  }

  inputReply(requestId: string, value: string): void {
    const execution = this.inFlight.get(requestId);
    if (!execution) throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' is in flight.`);
    if (execution !== this.current || !execution.waitingForInput) {
      throw tetherError(ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT, `Execution '${requestId}' is not waiting for input.`);
    }
    execution.waitingForInput = false;
    this.worker?.connection?.send({ type: "input_reply", requestId, value });
  }

  /** Interrupts the running execution; a queued one named by `requestId` is cancelled instead. Nothing runs on a stopped session. */
  async interrupt(requestId?: string): Promise<void> {
    this.assertNotEnded();
    if (requestId !== undefined) {
      const execution = this.inFlight.get(requestId);
      if (!execution) throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' is in flight.`);
      if (execution !== this.current) {
        this.finish(execution, this.syntheticDone(execution, "cancelled", { code: ErrorCodes.EXEC_CANCELLED, message: "Cancelled by an interrupt before it started." }, false), undefined);
        return;
      }
    }
    if (this.state === "stopped") return;
    this.assertServing();
    await this.requireWorker().call({ type: "interrupt" }, CALL_TIMEOUT_MS);
  }

  /** Restarts the kernel (state is lost); resolves once the new kernel is idle. A stopped session gets a fresh kernel on resume anyway. */
  async restart(): Promise<void> {
    this.assertNotEnded();
    if (this.state === "stopped") return;
    this.assertServing();
    this.logger.info("restarting the kernel on request");
    await this.requireWorker().call({ type: "restart" }, RESTART_TIMEOUT_MS);
  }

  addObserver(observer: SessionObserver): void {
    this.observers.add(observer);
  }

  removeObserver(observer: SessionObserver): void {
    this.observers.delete(observer);
  }

  /**
   * Client backpressure: stop reading the worker until `pauser` resumes. The
   * session remembers its pausers so a worker that replaces a lost one (or
   * resumes a stopped session) is held back too.
   */
  pauseWorker(pauser: object): void {
    this.workerPausers.add(pauser);
    this.worker?.connection?.pause(pauser);
  }

  resumeWorker(pauser: object): void {
    this.workerPausers.delete(pauser);
    this.worker?.connection?.resume(pauser);
  }

  private pump(): void {
    if (this.current || (this.state !== "ready" && this.state !== "busy")) return;
    if (this.lifetimeExpired) {
      this.suspend("max_lifetime", `The worker reached TETHER_MAX_SESSION_LIFETIME_S (${Math.round(this.deps.maxLifetimeMs / 1000)} s).`);
      return;
    }
    const worker = this.worker;
    const connection = worker?.connection;
    // A closed worker is about to stop the session, which ends the queue.
    if (!worker || worker.state !== "ready" || !connection || connection.state !== "open") return;
    const next = this.queue.shift();
    if (!next) return;
    this.clearIdle();
    this.current = next;
    next.startedAt = Date.now();
    this.transition("busy");
    if (this.resumeNotice) {
      const notice: SessionResumed = { type: "session_resumed", requestId: next.requestId, stateLost: true, restoredFiles: this.resumeNotice.restoredFiles };
      this.resumeNotice = undefined;
      next.resumed = true;
      next.sink?.resumed?.(notice);
      for (const observer of this.observers) observer.deliverNotice(notice);
    }
    connection.send({ type: "execute", requestId: next.requestId, code: next.code, timeoutMs: next.timeoutMs, stdin: next.stdin });
    const backstopMs = next.timeoutMs + this.deps.interruptGraceMs + BACKSTOP_EXTRA_MS;
    next.backstop = setTimeout(() => {
      this.logger.error({ requestId: next.requestId, backstopMs }, "the worker never ended the execution");
      this.onWorkerLost(worker, ErrorCodes.WORKER_LOST, `The worker did not end execution '${next.requestId}' within ${backstopMs} ms.`);
    }, backstopMs);
    next.backstop.unref();
  }

  private finish(execution: Execution, done: DoneEvent, raw: Buffer | undefined): void {
    if (!this.inFlight.delete(execution.requestId)) return;
    if (execution.backstop) clearTimeout(execution.backstop);
    if (this.current === execution) {
      this.current = undefined;
    } else {
      const index = this.queue.indexOf(execution);
      if (index >= 0) this.queue.splice(index, 1);
    }
    this.lastActivityAt = new Date();
    this.emit(execution, done, raw);
    if (this.state === "busy" && !this.current) this.transition("ready");
    this.pump();
    this.armIdle();
  }

  private syntheticDone(execution: Execution, status: ExecutionStatus, failure: { code: string; message: string }, stateLost: boolean): DoneEvent {
    return {
      type: "done",
      requestId: execution.requestId,
      status,
      executionCount: null,
      durationMs: execution.startedAt === undefined ? 0 : Date.now() - execution.startedAt,
      kernelRestarted: false,
      stateLost,
      failure,
    };
  }

  /** Ends every execution in flight, the running one first, then the queue in order. The kernel is gone with the worker. */
  private endAll(status: ExecutionStatus, failure: { code: string; message: string }): void {
    const pending = [...(this.current ? [this.current] : []), ...this.queue];
    for (const execution of pending) this.finish(execution, this.syntheticDone(execution, status, failure, true), undefined);
  }

  // ---- files (a stopped session resumes first) -----------------------------

  async listFiles(): Promise<FileListResponse> {
    const worker = await this.serving();
    const value = (await this.track(worker.call({ type: "files_list" }, CALL_TIMEOUT_MS))) as Partial<FileListResponse> | undefined;
    return { files: Array.isArray(value?.files) ? value.files : [], truncated: value?.truncated === true };
  }

  async deleteFile(path: string): Promise<void> {
    const worker = await this.serving();
    await this.track(worker.call({ type: "file_delete", path }, CALL_TIMEOUT_MS));
  }

  async download(path: string): Promise<{ size: number; stream: Readable }> {
    const worker = await this.serving();
    this.activeTransfers += 1;
    let opened: { size: number; stream: Readable };
    try {
      opened = await worker.download(path, CALL_TIMEOUT_MS);
    } catch (error) {
      this.transferEnded();
      throw error;
    }
    opened.stream.once("close", () => this.transferEnded());
    return opened;
  }

  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<unknown> {
    const worker = await this.serving();
    return this.track(worker.upload(path, source, maxBytes));
  }

  private async serving(): Promise<WorkerConnection> {
    this.assertNotEnded();
    if (this.state === "starting" && !this.startAttempt) this.assertServing();
    await this.wake();
    this.touch();
    return this.requireWorker();
  }

  /** A file call keeps the session from going idle until it ends. */
  private async track<T>(work: Promise<T>): Promise<T> {
    this.activeTransfers += 1;
    try {
      return await work;
    } finally {
      this.transferEnded();
    }
  }

  private transferEnded(): void {
    this.activeTransfers -= 1;
    this.touch();
  }

  // ---- scale to zero -------------------------------------------------------

  /** Snapshots the workspace, stops the worker; the session shows `stopped` and resumes on the next execute. */
  private suspend(kind: SessionStopReason["kind"], message: string): void {
    const worker = this.worker;
    if (this.state !== "ready" || this.current || this.suspending || this.closing || !worker) return;
    this.worker = undefined;
    this.clearTimers();
    this.logger.info({ kind, reason: message, launchId: worker.launchId }, "scaling the session to zero");
    this.stopReason = { kind, message, at: new Date().toISOString() };
    this.transition("stopped", message);
    this.setPhase("stopping", message);
    this.suspending = (async () => {
      const connection = worker.connection;
      if (connection && worker.state === "ready") {
        const startedAt = Date.now();
        try {
          this.snapshot = await snapshotWorkspace(this.deps.snapshots, this.id, connection);
          this.logger.info({ ...this.snapshot, snapshotMs: Date.now() - startedAt }, "workspace snapshotted");
        } catch (error) {
          this.logger.error({ err: error }, "the workspace snapshot failed; the previous one (if any) is kept");
        }
      }
      await worker.stop(message);
    })().finally(() => {
      this.suspending = undefined;
      if (this.closing) return;
      this.setPhase("stopped", message);
      // Executions that arrived while stopping resume the session now.
      if (this.queue.length > 0) this.wake().catch(() => undefined);
    });
  }

  private touch(): void {
    this.lastActivityAt = new Date();
    this.armIdle();
  }

  private armIdle(): void {
    this.clearIdle();
    if (this.state !== "ready" || this.current || this.queue.length > 0 || this.activeTransfers > 0 || this.closing) return;
    const idleMs = Math.min(MAX_TIMER_MS, this.deps.idleTimeoutS * 1000);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.activeTransfers > 0) return;
      this.suspend("idle_timeout", `No activity for ${this.deps.idleTimeoutS} s.`);
    }, idleMs);
    this.idleTimer.unref();
  }

  private armLifetime(): void {
    if (this.lifetimeTimer) clearTimeout(this.lifetimeTimer);
    this.lifetimeTimer = setTimeout(() => {
      this.lifetimeTimer = undefined;
      this.lifetimeExpired = true;
      // Busy: the running execution finishes first (pump stops the session then).
      this.pump();
    }, Math.min(MAX_TIMER_MS, this.deps.maxLifetimeMs));
    this.lifetimeTimer.unref();
  }

  private clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private clearTimers(): void {
    this.clearIdle();
    if (this.lifetimeTimer) clearTimeout(this.lifetimeTimer);
    this.lifetimeTimer = undefined;
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Deletes the session: stops its worker, ends executions in flight with "cancelled", forgets its snapshot. Idempotent. */
  stop(reason: string): Promise<void> {
    this.closing ??= this.doStop(reason);
    return this.closing;
  }

  private async doStop(reason: string): Promise<void> {
    this.clearTimers();
    this.transition("stopped", reason);
    this.phase = "stopped";
    this.endAll("cancelled", { code: ErrorCodes.SESSION_STOPPED, message: `The session was stopped: ${reason}` });
    for (const observer of this.observers) observer.sessionEnded("stopped", reason);
    this.observers.clear();
    const worker = this.worker;
    this.worker = undefined;
    const reserved = this.reserved;
    this.reserved = undefined;
    if (reserved && "slot" in reserved) reserved.slot();
    try {
      await Promise.allSettled([worker?.stop(reason), reserved && "worker" in reserved ? reserved.worker.stop(reason) : undefined, this.suspending]);
      await this.deps.snapshots.delete(this.id).catch((error: unknown) => this.logger.warn({ err: error }, "could not delete the snapshot"));
    } finally {
      this.deps.onDisposed(this);
    }
  }

  private assertNotEnded(): void {
    if (this.closing) throw tetherError(ErrorCodes.SESSION_STOPPED, `Session '${this.id}' was deleted.`);
    if (this.state === "failed") throw this.failedError();
  }

  /** For calls that need a kernel right now (interrupt, restart). */
  private assertServing(): void {
    if (this.state === "starting") throw tetherError(ErrorCodes.SESSION_NOT_READY, `Session '${this.id}' is still starting.`);
  }

  private failedError(): TetherError {
    return tetherError(ErrorCodes.SESSION_FAILED, `Session '${this.id}' failed: ${this.failure?.message ?? "unknown reason"}`, {
      hint: "Delete it and create a new session.",
    });
  }

  private requireWorker(): WorkerConnection {
    const connection = this.worker?.connection;
    if (!connection || connection.state !== "open") throw tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected.");
    return connection;
  }

  private transition(to: SessionState, reason?: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    // ready ⇄ busy happens per execution: keep it out of info logs.
    const level = (from === "ready" && to === "busy") || (from === "busy" && to === "ready") ? "debug" : "info";
    this.logger[level]({ from, to, ...(reason ? { reason } : {}) }, "session state changed");
  }

  private setPhase(phase: SessionPhase, reason?: string): void {
    if (this.phase === phase) return;
    const from = this.phase;
    this.phase = phase;
    this.logger.info({ from, to: phase, ...(reason ? { reason } : {}) }, "session phase changed");
    const notice: SessionStatusMessage = {
      type: "session_status",
      requestId: null,
      status: this.state,
      phase,
      ...(reason ? { reason } : {}),
      ...((phase === "stopping" || phase === "stopped") && this.stopReason ? { stopReason: this.stopReason } : {}),
    };
    for (const observer of this.observers) observer.deliverNotice(notice);
  }

  info(): SessionInfo {
    return {
      id: this.id,
      status: this.state,
      phase: this.phase,
      createdAt: this.createdAt.toISOString(),
      lastActivityAt: this.lastActivityAt.toISOString(),
      metadata: this.metadata,
      idleTimeoutS: this.deps.idleTimeoutS,
      ...(this.kernel ? { kernel: this.kernel } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
      ...(this.stopReason ? { stopReason: this.stopReason } : {}),
      ...(this.snapshot ? { snapshot: this.snapshot } : {}),
    };
  }
}
