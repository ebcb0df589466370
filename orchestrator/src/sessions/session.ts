import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { DoneEvent, ExecutionEvent, ExecutionStatus, FileListResponse, SessionInfo, StdinMode } from "@tether/shared";
import { ErrorCodes, TetherError, tetherError, type ErrorCode } from "../errors.js";
import type { JoinTokenStore } from "../join-tokens.js";
import type { LaunchExit, LaunchHandle, Launcher } from "../launchers/launcher.js";
import type { WorkerConnection, WorkerConnectionHandler, WorkerSessionMessage } from "../worker-connection.js";

/** `starting → ready ⇄ busy → stopped | failed`. */
export type SessionState = "starting" | "ready" | "busy" | "stopped" | "failed";

/** Where one execution's events go besides the session's observers: the REST fold. */
export interface ExecutionSink {
  /** `raw` is the worker's original frame when there is one (relay it as is); undefined for events the orchestrator made. */
  deliver(event: ExecutionEvent, raw: Buffer | undefined): void;
}

/** A client attached to the whole session (websocket streams): sees every execution's events and the session's end. */
export interface SessionObserver {
  deliverSessionEvent(event: ExecutionEvent, raw: Buffer | undefined): void;
  sessionEnded(state: "stopped" | "failed", reason: string): void;
}

export interface ExecutionRequest {
  requestId: string;
  code: string;
  timeoutMs: number;
  stdin: StdinMode;
}

export interface SessionDeps {
  launcher: Launcher;
  joinTokens: JoinTokenStore;
  logger: Logger;
  /** Full worker gateway URL, resolved at launch time (the port may be chosen at listen). */
  orchestratorUrl(): string;
  workerEnv: Readonly<Record<string, string>>;
  startTimeoutMs: number;
  interruptGraceMs: number;
  /** Called once the session reached stopped, or failed before ready (nobody can hold its id). */
  onDisposed(session: Session): void;
}

interface Execution extends ExecutionRequest {
  sink: ExecutionSink | undefined;
  waitingForInput: boolean;
  startedAt: number | undefined;
  backstop: NodeJS.Timeout | undefined;
}

/** Beyond the worker's own timeout + grace: a worker silent this much longer is considered lost. */
const BACKSTOP_EXTRA_MS = 30_000;
const MAX_QUEUED_EXECUTIONS = 1000;
const CALL_TIMEOUT_MS = 30_000;
const RESTART_TIMEOUT_MS = 120_000;
/** When the socket drops while starting, wait this long for the exit code and stderr: they say more. */
const EXIT_DETAIL_WAIT_MS = 1000;

/**
 * One session: a launched worker bound to it, and the in-order queue of
 * executions it runs one at a time. Every execution ends with exactly one
 * done, whatever happens to the worker.
 */
export class Session implements WorkerConnectionHandler {
  state: SessionState = "starting";
  readonly createdAt = new Date();
  lastActivityAt = new Date();
  kernel: SessionInfo["kernel"];
  failure: { code: string; message: string } | undefined;
  private worker: WorkerConnection | undefined;
  private launch: LaunchHandle | undefined;
  private current: Execution | undefined;
  private readonly queue: Execution[] = [];
  private readonly inFlight = new Map<string, Execution>();
  private readonly observers = new Set<SessionObserver>();
  private startWaiter: { resolve(): void; reject(error: TetherError): void } | undefined;
  private startTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(
    readonly id: string,
    readonly tenant: string,
    readonly launchId: string,
    readonly metadata: Record<string, string>,
    private readonly deps: SessionDeps,
  ) {
    this.logger = deps.logger.child({ sessionId: id, launchId });
  }

  /** Launches the worker; resolves once its kernel is ready, rejects with 502/504 TetherErrors. */
  async start(): Promise<void> {
    const startedAt = Date.now();
    const ready = new Promise<void>((resolve, reject) => (this.startWaiter = { resolve, reject }));
    this.startTimer = setTimeout(
      () =>
        this.failStart(
          tetherError(ErrorCodes.SESSION_START_TIMEOUT, `The worker was not ready within ${this.deps.startTimeoutMs} ms.`, {
            hint: "Raise TETHER_START_TIMEOUT_MS, or check the worker log (TETHER_LOG_LEVEL=debug).",
          }),
        ),
      this.deps.startTimeoutMs,
    );
    const joinToken = this.deps.joinTokens.mint(this.launchId, this.id);
    this.logger.info({ launcher: this.deps.launcher.kind }, "launching worker");
    try {
      this.launch = await this.deps.launcher.launch({
        launchId: this.launchId,
        sessionId: this.id,
        orchestratorUrl: this.deps.orchestratorUrl(),
        joinToken,
        env: this.deps.workerEnv,
      });
    } catch (error) {
      this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, `The worker could not be launched: ${(error as Error).message}`, { cause: error }));
      return ready;
    }
    const launch = this.launch;
    void launch.exited.then((exit) => this.onLaunchExited(exit));
    // Stopped or timed out while the launcher was busy: the launch is ours to clean up.
    if (this.state === "stopped" || this.state === "failed") void launch.stop("session ended while launching");
    await ready;
    this.logger.info({ startMs: Date.now() - startedAt }, "session ready");
  }

  /** Binds the worker that joined with this session's token. False when the session no longer waits for one. */
  attachWorker(worker: WorkerConnection): boolean {
    if (this.state !== "starting" || this.worker) return false;
    this.worker = worker;
    worker.setHandler(this);
    this.logger.info({ workerId: worker.workerId }, "worker joined; waiting for the kernel");
    return true;
  }

  // ---- worker events -------------------------------------------------------

  onMessage(message: WorkerSessionMessage, raw: Buffer): void {
    switch (message.type) {
      case "worker_ready":
        if (this.state !== "starting") return;
        this.kernel = message.kernel;
        this.clearStartTimer();
        this.transition("ready");
        this.logger.info({ kernel: message.kernel, timings: message.timings }, "kernel ready");
        this.startWaiter?.resolve();
        this.startWaiter = undefined;
        this.pump();
        return;
      case "worker_failed":
        if (this.state === "starting") {
          this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, `The worker could not start a kernel: ${message.error.message} (${message.error.code})`));
        } else {
          this.fail(ErrorCodes.WORKER_LOST, `The worker failed: ${message.error.message} (${message.error.code})`);
        }
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

  onClose(_code: ErrorCode, reason: string): void {
    if (this.state === "stopped" || this.state === "failed") return;
    if (this.state === "starting") {
      const launch = this.launch;
      const exitDetail = launch ? Promise.race([launch.exited, delay(EXIT_DETAIL_WAIT_MS)]) : Promise.resolve(undefined);
      void exitDetail.then((exit) =>
        this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, exit ? describeExit(exit) : `The worker disconnected before it was ready: ${reason}`)),
      );
      return;
    }
    this.fail(ErrorCodes.WORKER_LOST, reason);
  }

  private onLaunchExited(exit: LaunchExit): void {
    if (this.state === "failed" && this.failure?.code === ErrorCodes.WORKER_LOST && !this.failure.message.includes(exit.reason)) {
      // The socket usually drops first; the exit says why.
      this.failure = { ...this.failure, message: `${this.failure.message} ${describeExit(exit)}` };
      return;
    }
    if (this.state === "stopped" || this.state === "failed") return;
    if (this.state === "starting") {
      this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, describeExit(exit)));
      return;
    }
    this.fail(ErrorCodes.WORKER_LOST, `The worker process ended: ${describeExit(exit)}`);
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
      this.finish(execution, event, raw);
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
   * ready). Its events, ending with exactly one done, go to `sink` and to
   * every observer.
   */
  execute(request: ExecutionRequest, sink: ExecutionSink | undefined): void {
    if (this.state !== "starting") this.assertUsable();
    if (this.inFlight.has(request.requestId)) {
      throw tetherError(ErrorCodes.EXEC_DUPLICATE_REQUEST_ID, `An execution with requestId '${request.requestId}' is already in flight.`);
    }
    if (this.queue.length >= MAX_QUEUED_EXECUTIONS) {
      throw tetherError(ErrorCodes.SESSION_QUEUE_FULL, `The session already has ${MAX_QUEUED_EXECUTIONS} executions queued.`);
    }
    const execution: Execution = { ...request, sink, waitingForInput: false, startedAt: undefined, backstop: undefined };
    this.inFlight.set(request.requestId, execution);
    this.queue.push(execution);
    this.lastActivityAt = new Date();
    if (this.current || this.state === "starting") this.emit(execution, { type: "status", requestId: request.requestId, state: "queued" }, undefined);
    this.pump();
  }

  inputReply(requestId: string, value: string): void {
    const execution = this.inFlight.get(requestId);
    if (!execution) throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' is in flight.`);
    if (execution !== this.current || !execution.waitingForInput) {
      throw tetherError(ErrorCodes.EXEC_NOT_WAITING_FOR_INPUT, `Execution '${requestId}' is not waiting for input.`);
    }
    execution.waitingForInput = false;
    this.worker?.send({ type: "input_reply", requestId, value });
  }

  /** Interrupts the running execution; a queued one named by `requestId` is cancelled instead. */
  async interrupt(requestId?: string): Promise<void> {
    this.assertUsable();
    if (requestId !== undefined) {
      const execution = this.inFlight.get(requestId);
      if (!execution) throw tetherError(ErrorCodes.EXEC_UNKNOWN_REQUEST, `No execution '${requestId}' is in flight.`);
      if (execution !== this.current) {
        this.finish(execution, this.syntheticDone(execution, "cancelled", { code: ErrorCodes.EXEC_UNKNOWN_REQUEST, message: "Cancelled before it started." }, false), undefined);
        return;
      }
    }
    await this.requireWorker().call({ type: "interrupt" }, CALL_TIMEOUT_MS);
  }

  /** Restarts the kernel (state is lost); resolves once the new kernel is idle. */
  async restart(): Promise<void> {
    this.assertUsable();
    this.logger.info("restarting the kernel on request");
    await this.requireWorker().call({ type: "restart" }, RESTART_TIMEOUT_MS);
  }

  addObserver(observer: SessionObserver): void {
    this.observers.add(observer);
  }

  removeObserver(observer: SessionObserver): void {
    this.observers.delete(observer);
  }

  /** Client backpressure: stop reading the worker until `pauser` resumes. */
  pauseWorker(pauser: object): void {
    this.worker?.pause(pauser);
  }

  resumeWorker(pauser: object): void {
    this.worker?.resume(pauser);
  }

  private pump(): void {
    if (this.current || (this.state !== "ready" && this.state !== "busy")) return;
    const worker = this.worker;
    // A closed worker is about to fail the session, which ends the queue.
    if (!worker || worker.state !== "open") return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    next.startedAt = Date.now();
    this.transition("busy");
    worker.send({ type: "execute", requestId: next.requestId, code: next.code, timeoutMs: next.timeoutMs, stdin: next.stdin });
    const backstopMs = next.timeoutMs + this.deps.interruptGraceMs + BACKSTOP_EXTRA_MS;
    next.backstop = setTimeout(() => {
      this.logger.error({ requestId: next.requestId, backstopMs }, "the worker never ended the execution");
      this.fail(ErrorCodes.WORKER_LOST, `The worker did not end execution '${next.requestId}' within ${backstopMs} ms.`);
    }, backstopMs);
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

  // ---- files ---------------------------------------------------------------

  async listFiles(): Promise<FileListResponse> {
    this.assertUsable();
    const value = (await this.requireWorker().call({ type: "files_list" }, CALL_TIMEOUT_MS)) as Partial<FileListResponse> | undefined;
    return { files: Array.isArray(value?.files) ? value.files : [], truncated: value?.truncated === true };
  }

  async deleteFile(path: string): Promise<void> {
    this.assertUsable();
    await this.requireWorker().call({ type: "file_delete", path }, CALL_TIMEOUT_MS);
  }

  download(path: string): Promise<{ size: number; stream: Readable }> {
    this.assertUsable();
    return this.requireWorker().download(path, CALL_TIMEOUT_MS);
  }

  upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<unknown> {
    this.assertUsable();
    return this.requireWorker().upload(path, source, maxBytes);
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Stops the worker; executions in flight end with done status "cancelled". Idempotent. */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.doStop(reason);
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    const wasStarting = this.state === "starting";
    this.clearStartTimer();
    this.transition("stopped", reason);
    if (wasStarting) {
      this.startWaiter?.reject(tetherError(ErrorCodes.SESSION_STOPPED, `The session was stopped while starting: ${reason}`));
      this.startWaiter = undefined;
    }
    this.endAll("cancelled", { code: ErrorCodes.SESSION_STOPPED, message: `The session was stopped: ${reason}` });
    this.deps.joinTokens.revoke(this.launchId);
    this.worker?.send({ type: "shutdown", reason });
    for (const observer of this.observers) observer.sessionEnded("stopped", reason);
    this.observers.clear();
    try {
      await this.launch?.stop(reason);
    } finally {
      this.worker?.close();
      this.deps.onDisposed(this);
    }
  }

  /** Failure before ready: the create request gets `error`, nobody else knows the session. */
  private failStart(error: TetherError): void {
    if (this.state !== "starting") return;
    this.clearStartTimer();
    this.failure = { code: error.code, message: error.message };
    this.transition("failed", error.message);
    this.endAll("worker_lost", { code: ErrorCodes.WORKER_LOST, message: error.message });
    for (const observer of this.observers) observer.sessionEnded("failed", error.message);
    this.observers.clear();
    this.startWaiter?.reject(error);
    this.startWaiter = undefined;
    this.teardown(error.message);
    this.deps.onDisposed(this);
  }

  /** The worker is gone after ready: every execution ends worker_lost; the session stays, failed, until deleted. */
  private fail(code: ErrorCode, message: string): void {
    if (this.state === "stopped" || this.state === "failed") return;
    if (this.state === "starting") {
      this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, message));
      return;
    }
    this.failure = { code, message };
    this.transition("failed", message);
    this.endAll("worker_lost", { code: ErrorCodes.WORKER_LOST, message });
    for (const observer of this.observers) observer.sessionEnded("failed", message);
    this.observers.clear();
    this.teardown(message);
  }

  private teardown(reason: string): void {
    this.deps.joinTokens.revoke(this.launchId);
    this.worker?.send({ type: "shutdown", reason });
    const launch = this.launch;
    const stopped = launch ? launch.stop(reason) : Promise.resolve();
    void stopped.finally(() => this.worker?.close());
  }

  private assertUsable(): void {
    switch (this.state) {
      case "ready":
      case "busy":
        return;
      case "starting":
        throw tetherError(ErrorCodes.SESSION_NOT_READY, `Session '${this.id}' is still starting.`);
      case "failed":
        throw tetherError(ErrorCodes.SESSION_FAILED, `Session '${this.id}' failed: ${this.failure?.message ?? "unknown reason"}`, {
          hint: "Delete it and create a new session.",
        });
      case "stopped":
        throw tetherError(ErrorCodes.SESSION_STOPPED, `Session '${this.id}' was stopped.`);
      default: {
        const unreachable: never = this.state;
        return unreachable;
      }
    }
  }

  private requireWorker(): WorkerConnection {
    if (!this.worker || this.worker.state !== "open") throw tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected.");
    return this.worker;
  }

  private clearStartTimer(): void {
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = undefined;
  }

  private transition(to: SessionState, reason?: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    // ready ⇄ busy happens per execution: keep it out of info logs.
    const level = (from === "ready" && to === "busy") || (from === "busy" && to === "ready") ? "debug" : "info";
    this.logger[level]({ from, to, ...(reason ? { reason } : {}) }, "session state changed");
  }

  info(): SessionInfo {
    return {
      id: this.id,
      status: this.state,
      createdAt: this.createdAt.toISOString(),
      lastActivityAt: this.lastActivityAt.toISOString(),
      metadata: this.metadata,
      ...(this.kernel ? { kernel: this.kernel } : {}),
      ...(this.failure ? { failure: this.failure } : {}),
    };
  }
}

/** "the worker exited with code 1: <last stderr lines>". */
export function describeExit(exit: LaunchExit): string {
  const tail = exit.stderrTail.slice(-10).map(summariseLogLine).join("\n");
  return tail ? `${exit.reason}; last worker output:\n${tail}` : exit.reason;
}

/** Worker logs are pino JSON lines: keep the message and error, not the noise. */
function summariseLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const parsed = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown } };
    const message = typeof parsed.msg === "string" ? parsed.msg : line;
    return typeof parsed.err?.message === "string" ? `${message}: ${parsed.err.message}` : message;
  } catch {
    return line;
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms));
}
