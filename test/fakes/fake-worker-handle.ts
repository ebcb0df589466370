import { Readable } from "node:stream";
import type { WorkerCallParams, WorkerCallResult, WorkerCallType, WorkerMessage } from "@tether/shared";
import { ErrorCodes, tetherError, type ErrorCode } from "../../orchestrator/src/errors.js";
import type { KernelInfo, LaunchedWorkerState, WorkerCommand, WorkerHandle, WorkerLinkProgress, WorkerListener } from "../../orchestrator/src/workers/worker-handle.js";

const encoder = new TextEncoder();

/**
 * A worker for unit tests of the session core: no process, no socket. The
 * test decides when it is ready, fails, or is lost, and what it answers.
 */
export class FakeWorkerHandle implements WorkerHandle {
  state: LaunchedWorkerState = "launching";
  kernel: KernelInfo | undefined;
  startMs: number | undefined;
  readonly ready: Promise<void>;
  readonly sent: WorkerCommand[] = [];
  readonly calls: { type: WorkerCallType; params: unknown }[] = [];
  readonly paused = new Set<object>();
  started = false;
  stopped: string | undefined;
  handedOver: string | undefined;
  workerId: string | undefined = undefined;
  /** Files the fake workspace holds (files_list, download, upload work on it). */
  readonly files = new Map<string, Buffer>();
  private listener: WorkerListener | undefined;
  private settle!: { resolve(): void; reject(error: Error): void };

  constructor(readonly launchId: string) {
    this.ready = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.ready.catch(() => undefined);
  }

  get serving(): boolean {
    return this.state === "ready";
  }

  start(): void {
    this.started = true;
  }

  setListener(listener: WorkerListener | undefined): void {
    this.listener = listener;
  }

  // ---- what the test does -----------------------------------------------

  becomeReady(): void {
    this.state = "ready";
    this.kernel = { name: "python3", language: "python", languageVersion: "3.11" };
    this.startMs = 1;
    this.listener?.phase("ready");
    this.settle.resolve();
  }

  progress(state: "connected"): void {
    this.state = state;
    this.listener?.phase(state);
  }

  failStart(message = "no kernel"): void {
    this.state = "failed";
    this.settle.reject(tetherError(ErrorCodes.SESSION_START_FAILED, message));
  }

  lose(message = "socket closed", code: ErrorCode = ErrorCodes.WORKER_LOST): void {
    this.state = "stopped";
    this.listener?.lost(code, message);
  }

  /** The worker sends a message, as its connection would deliver it. */
  emit(message: WorkerMessage & { type: Exclude<WorkerMessage["type"], "call_result" | "stream_ack" | "stream_end" | "hello" | "ack" | "resume"> }): void {
    this.listener?.message(message, encoder.encode(JSON.stringify(message)));
  }

  /** Ends execution `requestId` the way a worker does. */
  done(requestId: string, status: "ok" | "error" = "ok"): void {
    this.emit({ type: "done", requestId, status, executionCount: 1, durationMs: 1, kernelRestarted: false, stateLost: false });
  }

  lastExecute(): Extract<WorkerCommand, { type: "execute" }> | undefined {
    for (let i = this.sent.length - 1; i >= 0; i--) {
      const command = this.sent[i];
      if (command?.type === "execute") return command;
    }
    return undefined;
  }

  // ---- the handle ---------------------------------------------------------

  send(command: WorkerCommand): boolean {
    if (this.state !== "ready") return false;
    this.sent.push(command);
    return true;
  }

  async call<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>): Promise<WorkerCallResult<T>> {
    this.calls.push({ type, params });
    if (this.state !== "ready") throw tetherError(ErrorCodes.WORKER_LOST, "not connected");
    const answers: { [K in WorkerCallType]: () => WorkerCallResult<K> } = {
      interrupt: () => ({}),
      restart: () => ({}),
      executions_status: () => ({ running: null, queued: [], ended: [] }),
      files_list: () => ({ files: [...this.files].map(([path, bytes]) => ({ path, size: bytes.byteLength, modifiedAt: new Date(0).toISOString() })), truncated: false }),
      file_delete: () => ({}),
      file_download: () => ({ size: 0 }),
      file_upload: () => ({ size: 0 }),
    };
    return answers[type]();
  }

  linkProgress(): WorkerLinkProgress | undefined {
    return undefined;
  }

  handOver(reason: string): void {
    this.handedOver = reason;
    this.state = "stopped";
  }

  async download(path: string): Promise<{ size: number; stream: Readable }> {
    const bytes = this.files.get(path);
    if (!bytes) throw tetherError(ErrorCodes.FILE_NOT_FOUND, `no ${path}`);
    return { size: bytes.byteLength, stream: Readable.from([bytes]) };
  }

  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>): Promise<WorkerCallResult<"file_upload">> {
    const chunks: Buffer[] = [];
    for await (const chunk of source) chunks.push(Buffer.from(chunk));
    this.files.set(path, Buffer.concat(chunks));
    return { size: Buffer.concat(chunks).byteLength };
  }

  pause(pauser: object): void {
    this.paused.add(pauser);
  }

  resume(pauser: object): void {
    this.paused.delete(pauser);
  }

  async stop(reason: string): Promise<void> {
    this.stopped ??= reason;
    if (this.state === "launching" || this.state === "connected") {
      this.state = "failed";
      this.settle.reject(tetherError(ErrorCodes.SESSION_STOPPED, reason));
    } else {
      this.state = "stopped";
    }
  }
}
