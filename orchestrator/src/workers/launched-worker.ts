import type { Readable } from "node:stream";
import type { Logger } from "pino";
import { WORKER_MOVED_CLOSE_CODE, type DoneEvent, type WorkerCallParams, type WorkerCallResult, type WorkerCallType } from "@tether/shared";
import { DEFAULT_PROFILE, type WorkerProfile } from "../config-profiles.js";
import { ErrorCodes, TetherError, errorMessage, tetherError, type ErrorCode } from "../errors.js";
import type { LaunchExit, LaunchHandle, Launcher } from "../launchers/launcher.js";
import type { MetricsHooks } from "../metrics/hooks.js";
import type { JoinTokens } from "./join-tokens.js";
import type { AttachedConnection, AwaitedLaunch, LaunchTable } from "./launch-table.js";
import type { WorkerConnectionHandler, WorkerSessionMessage } from "./worker-connection.js";
import type { KernelInfo, LaunchedWorkerState, WorkerCommand, WorkerHandle, WorkerLinkProgress, WorkerListener } from "./worker-handle.js";

export interface LaunchedWorkerDeps {
  launcher: Launcher;
  joinTokens: JoinTokens;
  launches: LaunchTable;
  logger: Logger;
  /** Full worker gateway URL, resolved at launch time (the port may be chosen at listen). */
  orchestratorUrl(): string;
  workerEnv: Readonly<Record<string, string>>;
  startTimeoutMs: number;
  /** The worker profile launches run with (its env already in workerEnv); absent: default. */
  profile?: WorkerProfile;
  metrics?: MetricsHooks;
}

/** When the socket drops, wait this long for the exit code and stderr: they say more. */
const EXIT_DETAIL_WAIT_MS = 1000;
const PRELOAD_REQUEST_ID = "tether-preload";

/**
 * One launch of a worker, from the launcher call to its end: mints the join
 * token, waits for the worker to dial back and for its kernel (and, for pool
 * workers, the preload code), and then hands its events to whoever holds it.
 * A worker serves at most one session in its life: it is never given back.
 */
export class LaunchedWorker implements WorkerHandle, AwaitedLaunch, WorkerConnectionHandler {
  state: LaunchedWorkerState = "launching";
  kernel: KernelInfo | undefined;
  private connection: AttachedConnection | undefined;
  /** Resolves once the kernel is ready (and the preload ran); rejects with a 502/504 TetherError. */
  readonly ready: Promise<void>;
  readonly startedAt = Date.now();
  /** Set when ready: ms from launch to ready. */
  startMs: number | undefined;
  private listener: WorkerListener | undefined;
  private launch: LaunchHandle | undefined;
  private settleReady!: { resolve(): void; reject(error: TetherError): void };
  private startTimer: NodeJS.Timeout | undefined;
  private preloadDone: ((done: DoneEvent) => void) | undefined;
  private stopping: Promise<void> | undefined;
  private logger: Logger;

  constructor(
    readonly launchId: string,
    /** The session it is launched for, or null for a warm-pool worker. */
    readonly sessionId: string | null,
    private readonly deps: LaunchedWorkerDeps,
    private readonly preload: string | undefined = undefined,
  ) {
    this.logger = deps.logger.child({ launchId, ...(sessionId ? { sessionId } : { pool: true }) });
    this.ready = new Promise<void>((resolve, reject) => (this.settleReady = { resolve, reject }));
    // Nobody may be waiting yet (a pool worker): the rejection is read through `state` too.
    this.ready.catch(() => undefined);
    deps.launches.add(this);
  }

  /** Hands progress and events to `listener` from now on (the pool, then the claiming session). */
  setListener(listener: WorkerListener | undefined): void {
    this.listener = listener;
  }

  get workerId(): string | undefined {
    return this.connection?.workerId;
  }

  get serving(): boolean {
    return this.state === "ready" && this.connection?.state === "open";
  }

  send(command: WorkerCommand): boolean {
    return this.connection?.send(command) ?? false;
  }

  call<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): Promise<WorkerCallResult<T>> {
    const connection = this.openConnection();
    return connection ? connection.call(type, params, timeoutMs) : Promise.reject(notConnected());
  }

  download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    const connection = this.openConnection();
    return connection ? connection.download(path, timeoutMs) : Promise.reject(notConnected());
  }

  upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">> {
    const connection = this.openConnection();
    return connection ? connection.upload(path, source, maxBytes) : Promise.reject(notConnected());
  }

  pause(pauser: object): void {
    this.connection?.pause(pauser);
  }

  resume(pauser: object): void {
    this.connection?.resume(pauser);
  }

  linkProgress(): WorkerLinkProgress | undefined {
    return this.openConnection();
  }

  handOver(reason: string): void {
    if (this.state !== "ready") return;
    this.transition("stopped", `handed over: ${reason}`);
    this.clearStartTimer();
    // Not teardown(): the worker lives on; its next owner ends it over the link.
    this.stopping ??= Promise.resolve();
    this.launch?.release?.();
    this.connection?.close(WORKER_MOVED_CLOSE_CODE, "moved to another replica");
    this.deps.launches.remove(this);
  }

  private openConnection(): AttachedConnection | undefined {
    return this.connection?.state === "open" ? this.connection : undefined;
  }

  /** Starts the launch; the outcome comes through `ready`. */
  start(): void {
    this.startTimer = setTimeout(
      () =>
        this.failStart(
          tetherError(ErrorCodes.SESSION_START_TIMEOUT, `The worker was not ready within ${this.deps.startTimeoutMs} ms.`, {
            hint: "Raise TETHER_START_TIMEOUT_MS, or check the worker log (TETHER_LOG_LEVEL=debug).",
          }),
        ),
      this.deps.startTimeoutMs,
    );
    this.startTimer.unref();
    void this.doLaunch();
  }

  private async doLaunch(): Promise<void> {
    this.logger.info({ launcher: this.deps.launcher.kind }, "launching worker");
    try {
      const joinToken = await this.deps.joinTokens.mint(this.launchId, this.sessionId);
      // Stopped or timed out while the token was being minted: nothing to launch.
      if (this.ended()) return;
      this.launch = await this.deps.launcher.launch({
        launchId: this.launchId,
        sessionId: this.sessionId,
        orchestratorUrl: gatewayUrlFor(this.deps.orchestratorUrl(), this.launchId),
        joinToken,
        env: this.deps.workerEnv,
        profile: this.deps.profile,
      });
    } catch (error) {
      // A launcher's own TetherError (Azure 403, 429 with Retry-After, quota) says more than a generic start failure.
      this.failStart(error instanceof TetherError ? error : tetherError(ErrorCodes.SESSION_START_FAILED, `The worker could not be launched: ${errorMessage(error)}`, { cause: error }));
      return;
    }
    const launch = this.launch;
    // The worker may dial back before the launcher call returns.
    if (this.connection) launch.joined?.();
    void launch.exited.then((exit) => this.onLaunchExited(exit));
    // Stopped or timed out while the launcher was busy: the launch is ours to clean up.
    if (this.state === "stopped" || this.state === "failed") void launch.stop("the worker was stopped while launching");
  }

  private ended(): boolean {
    return this.state === "stopped" || this.state === "failed";
  }

  /** True while the gateway may bind a dialing worker to this launch. */
  get awaitingConnection(): boolean {
    return this.state === "launching" && !this.connection;
  }

  /** Binds the worker that joined with this launch's token. False when the launch no longer waits for one. */
  attachWorker(connection: AttachedConnection): boolean {
    if (!this.awaitingConnection) return false;
    this.connection = connection;
    connection.setHandler(this);
    this.launch?.joined?.();
    this.transition("connected");
    this.logger.info({ workerId: connection.workerId }, "worker joined; waiting for the kernel");
    this.listener?.phase("connected");
    return true;
  }

  // ---- worker events -------------------------------------------------------

  onMessage(message: WorkerSessionMessage, raw: Uint8Array): void {
    if (this.state === "ready") {
      if (message.type === "worker_failed") {
        this.lose(ErrorCodes.WORKER_LOST, `The worker failed: ${message.error.message} (${message.error.code})`);
        return;
      }
      this.listener?.message(message, raw);
      return;
    }
    if (this.state !== "connected") return;
    switch (message.type) {
      case "worker_ready":
        this.kernel = message.kernel;
        this.logger.info({ kernel: message.kernel, timings: message.timings }, "kernel ready");
        if (this.preload === undefined) this.becomeReady();
        else void this.runPreload(this.preload);
        return;
      case "worker_failed":
        this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, `The worker could not start a kernel: ${message.error.message} (${message.error.code})`));
        return;
      case "done":
        if (message.requestId === PRELOAD_REQUEST_ID) this.preloadDone?.(message);
        return;
      case "error":
        if (message.requestId === PRELOAD_REQUEST_ID) this.logger.warn({ name: message.name, value: message.value }, "the preload code raised");
        return;
      default:
        // Preload output and kernel status: nobody's business.
        return;
    }
  }

  onClose(_code: ErrorCode, reason: string): void {
    if (this.state === "stopped" || this.state === "failed") return;
    const launch = this.launch;
    const exitDetail = launch ? Promise.race([launch.exited, delay(EXIT_DETAIL_WAIT_MS)]) : Promise.resolve(undefined);
    if (this.state === "ready") {
      // The socket usually drops before the exit is seen; the exit says why.
      void exitDetail.then((exit) => this.lose(ErrorCodes.WORKER_LOST, exit ? `${reason} ${describeExit(exit)}` : reason));
      return;
    }
    void exitDetail.then((exit) =>
      this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, exit ? describeExit(exit) : `The worker disconnected before it was ready: ${reason}`)),
    );
  }

  private onLaunchExited(exit: LaunchExit): void {
    if (this.state === "stopped" || this.state === "failed") return;
    if (this.state === "ready") {
      this.lose(ErrorCodes.WORKER_LOST, `The worker process ended: ${describeExit(exit)}`);
      return;
    }
    this.failStart(tetherError(ErrorCodes.SESSION_START_FAILED, describeExit(exit)));
  }

  /** TETHER_POOL_PRELOAD: runs as an ordinary execution; a failure is logged, the worker still serves. */
  private async runPreload(code: string): Promise<void> {
    const startedAt = Date.now();
    const done = new Promise<DoneEvent>((resolve) => (this.preloadDone = resolve));
    this.connection?.send({ type: "execute", requestId: PRELOAD_REQUEST_ID, code, timeoutMs: this.deps.startTimeoutMs, stdin: { mode: "none" } });
    const result = await done;
    this.preloadDone = undefined;
    if (this.state !== "connected") return;
    if (result.status === "ok") this.logger.info({ preloadMs: Date.now() - startedAt }, "preload ran");
    else this.logger.warn({ status: result.status, failure: result.failure }, "the preload code did not succeed; the worker serves anyway");
    this.becomeReady();
  }

  private becomeReady(): void {
    this.clearStartTimer();
    this.startMs = Date.now() - this.startedAt;
    this.reportStart(undefined);
    this.transition("ready");
    this.listener?.phase("ready");
    this.settleReady.resolve();
  }

  private failStart(error: TetherError): void {
    if (this.state !== "launching" && this.state !== "connected") return;
    this.clearStartTimer();
    this.reportStart(error.code);
    this.transition("failed", error.message);
    this.settleReady.reject(error);
    // A preload in flight will get no done from a worker that is gone: end its wait.
    this.preloadDone?.({ type: "done", requestId: PRELOAD_REQUEST_ID, status: "worker_lost", executionCount: null, durationMs: 0, kernelRestarted: false, stateLost: true });
    void this.teardown(error.message);
  }

  private lose(code: ErrorCode, message: string): void {
    if (this.state !== "ready") return;
    this.deps.metrics?.workerLost();
    this.transition("stopped", message);
    void this.teardown(message);
    this.listener?.lost(code, message);
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Shuts the worker down and waits for its launch to end. Idempotent. */
  stop(reason: string): Promise<void> {
    if (this.state === "launching" || this.state === "connected") {
      this.failStart(tetherError(ErrorCodes.SESSION_STOPPED, `The worker was stopped while starting: ${reason}`));
    } else if (this.state === "ready") {
      this.transition("stopped", reason);
    }
    return this.teardown(reason);
  }

  private teardown(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.clearStartTimer();
      this.deps.joinTokens.revoke(this.launchId);
      this.connection?.send({ type: "shutdown", reason });
      this.connection?.shuttingDown(reason);
      try {
        await this.launch?.stop(reason);
      } finally {
        this.connection?.close();
        this.deps.launches.remove(this);
      }
    })();
    return this.stopping;
  }

  private reportStart(failureCode: string | undefined): void {
    const profile = this.deps.profile?.name ?? DEFAULT_PROFILE;
    this.deps.metrics?.workerStartEnded({ profile, pooled: this.sessionId === null, durationMs: Date.now() - this.startedAt, ...(failureCode ? { failureCode } : {}) });
  }

  private clearStartTimer(): void {
    if (this.startTimer) clearTimeout(this.startTimer);
    this.startTimer = undefined;
  }

  private transition(to: LaunchedWorkerState, reason?: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.logger.info({ from, to, ...(reason ? { reason } : {}) }, "worker state changed");
  }
}

/**
 * The gateway URL with `?launch=<launchId>`: behind a balancer, any replica
 * routes the worker's dial-back (and its resumes) to the replica that owns
 * its launch or session without reading a frame.
 */
export function gatewayUrlFor(gatewayUrl: string, launchId: string): string {
  const url = new URL(gatewayUrl);
  url.searchParams.set("launch", launchId);
  return url.toString();
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
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== "object" || parsed === null) return line;
    const message = "msg" in parsed && typeof parsed.msg === "string" ? parsed.msg : line;
    const err = "err" in parsed && typeof parsed.err === "object" && parsed.err !== null && "message" in parsed.err ? parsed.err.message : undefined;
    return typeof err === "string" ? `${message}: ${err}` : message;
  } catch {
    return line;
  }
}

function notConnected(): TetherError {
  return tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected.");
}

function delay(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}
