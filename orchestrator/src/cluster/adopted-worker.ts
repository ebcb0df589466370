import type { Readable } from "node:stream";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { WORKER_MOVED_CLOSE_CODE, type WorkerCallParams, type WorkerCallResult, type WorkerCallType, type WorkerResume } from "@tether/shared";
import { ErrorCodes, TetherError, tetherError, type ErrorCode } from "../errors.js";
import { WorkerConnection, type WorkerConnectionHandler, type WorkerSessionMessage } from "../workers/worker-connection.js";
import type { KernelInfo, LaunchedWorkerState, WorkerCommand, WorkerHandle, WorkerLinkProgress, WorkerListener } from "../workers/worker-handle.js";

export interface AdoptedWorkerOptions {
  sessionId: string;
  workerId: string;
  launchId: string;
  kernel: KernelInfo | undefined;
  /** The worker's resume token digest, from the store. */
  resumeDigest: string;
  /** The last frame of this worker the previous owner persisted (0: none). */
  persistedSeq: number;
  heartbeatIntervalMs: number;
  /** How long the worker gets to resume here before it is presumed lost. */
  resumeWaitMs: number;
  logger: Logger;
  /** The link is up here: the session's executions are reconciled with what the worker has. */
  onResumed(worker: AdoptedWorker): void;
}

/**
 * A worker another replica served, as this replica's session sees it: ready,
 * with its link held until the worker resumes here (it redials through the
 * balancer when its old replica goes). Commands wait for the link like on a
 * held one; calls wait for it too. A worker that does not come back within
 * the wait is lost, like one whose link dropped for good.
 */
export class AdoptedWorker implements WorkerHandle, WorkerConnectionHandler {
  state: LaunchedWorkerState = "ready";
  readonly ready = Promise.resolve();
  readonly startMs = undefined;
  readonly launchId: string;
  readonly workerId: string;
  readonly kernel: KernelInfo | undefined;
  private connection: WorkerConnection | undefined;
  private listener: WorkerListener | undefined;
  private readonly queued: WorkerCommand[] = [];
  private readonly pausers = new Set<object>();
  private readonly waiters: { resolve(connection: WorkerConnection): void; reject(error: TetherError): void }[] = [];
  private waitTimer: NodeJS.Timeout | undefined;
  private lostError: TetherError | undefined;
  private readonly logger: Logger;

  constructor(private readonly options: AdoptedWorkerOptions) {
    this.launchId = options.launchId;
    this.workerId = options.workerId;
    this.kernel = options.kernel;
    this.logger = options.logger.child({ workerId: options.workerId, launchId: options.launchId });
    this.waitTimer = setTimeout(
      () => this.lose(ErrorCodes.WORKER_LOST, `The worker did not reconnect within ${options.resumeWaitMs} ms after the replica serving it went away.`),
      options.resumeWaitMs,
    );
    this.waitTimer.unref();
  }

  get serving(): boolean {
    return this.state === "ready" && (this.connection === undefined || this.connection.state === "open");
  }

  /** Nothing to launch: the worker runs already. */
  start(): void {}

  setListener(listener: WorkerListener | undefined): void {
    this.listener = listener;
  }

  send(command: WorkerCommand): boolean {
    if (this.state !== "ready") return false;
    if (this.connection) return this.connection.send(command);
    this.queued.push(command);
    return true;
  }

  async call<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): Promise<WorkerCallResult<T>> {
    return (await this.linked()).call(type, params, timeoutMs);
  }

  async download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    return (await this.linked()).download(path, timeoutMs);
  }

  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">> {
    return (await this.linked()).upload(path, source, maxBytes);
  }

  pause(pauser: object): void {
    this.pausers.add(pauser);
    this.connection?.pause(pauser);
  }

  resume(pauser: object): void {
    this.pausers.delete(pauser);
    this.connection?.resume(pauser);
  }

  linkProgress(): WorkerLinkProgress | undefined {
    return this.connection?.state === "open" ? this.connection : undefined;
  }

  /**
   * The worker's resume reached this replica. The link continues after what
   * the previous owner persisted; what waited for it goes out.
   */
  acceptResume(socket: WebSocket, resume: WorkerResume): { ok: true; connection: WorkerConnection } | { ok: false; code: ErrorCode; message: string } {
    if (this.state !== "ready" || this.connection) return { ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED, message: "This worker can no longer be resumed here." };
    const takeover = { sentSeq: resume.lastSeqReceived, deliveredSeq: this.options.persistedSeq, resumeDigest: this.options.resumeDigest };
    const connection = WorkerConnection.takeOver(socket, resume, this.options.sessionId, takeover, this.options.heartbeatIntervalMs, this.logger);
    if (!connection) return { ok: false, code: ErrorCodes.WORKER_RESUME_REFUSED, message: "The resume token is not valid for this worker." };
    clearTimeout(this.waitTimer);
    this.connection = connection;
    connection.setHandler(this);
    for (const pauser of this.pausers) connection.pause(pauser);
    for (const command of this.queued.splice(0)) connection.send(command);
    for (const waiter of this.waiters.splice(0)) waiter.resolve(connection);
    this.options.onResumed(this);
    return { ok: true, connection };
  }

  onMessage(message: WorkerSessionMessage, raw: Uint8Array): void {
    if (this.state !== "ready") return;
    if (message.type === "worker_failed") {
      this.lose(ErrorCodes.WORKER_LOST, `The worker failed: ${message.error.message} (${message.error.code})`);
      return;
    }
    this.listener?.message(message, raw);
  }

  onClose(code: ErrorCode, reason: string): void {
    this.lose(code, reason);
  }

  async stop(reason: string): Promise<void> {
    if (this.state === "stopped") return;
    this.state = "stopped";
    clearTimeout(this.waitTimer);
    this.failWaiters(tetherError(ErrorCodes.SESSION_STOPPED, `The worker was stopped: ${reason}`));
    // Not our process to kill: the worker exits when told, or when its link is refused for good.
    this.connection?.send({ type: "shutdown", reason });
    this.connection?.close();
  }

  handOver(reason: string): void {
    if (this.state !== "ready") return;
    this.state = "stopped";
    clearTimeout(this.waitTimer);
    this.failWaiters(tetherError(ErrorCodes.SESSION_MOVED, `The session moved to another replica: ${reason}`));
    this.connection?.close(WORKER_MOVED_CLOSE_CODE, "moved to another replica");
  }

  private linked(): Promise<WorkerConnection> {
    if (this.connection?.state === "open") return Promise.resolve(this.connection);
    if (this.state !== "ready") return Promise.reject(this.lostError ?? tetherError(ErrorCodes.WORKER_LOST, "The session's worker is not connected."));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private lose(code: ErrorCode, message: string): void {
    if (this.state !== "ready") return;
    this.state = "stopped";
    clearTimeout(this.waitTimer);
    this.lostError = tetherError(code, message);
    this.failWaiters(this.lostError);
    this.logger.warn({ reason: message }, "the adopted worker was lost");
    this.connection?.close();
    this.listener?.lost(code, message);
  }

  private failWaiters(error: TetherError): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}
