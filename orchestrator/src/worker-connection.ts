import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import {
  FILE_CHUNK_BYTES,
  MessageCodec,
  STREAM_WINDOW_BYTES,
  WorkerCloseCodes,
  WorkerMessage,
  decodeBinaryFrame,
  encodeBinaryFrame,
  type OrchestratorMessage,
} from "@tether/shared";
import { ErrorCodes, TetherError, errorFromDetail, tetherError, type ErrorCode } from "./errors.js";

/** Decodes every frame a worker sends; built once, shared by all connections. */
export const workerCodec = new MessageCodec(WorkerMessage);

/** Messages the connection hands to its session (calls and streams it settles itself). */
export type WorkerSessionMessage = Exclude<WorkerMessage, { type: "call_result" | "stream_ack" | "stream_end" | "hello" }>;

export interface WorkerConnectionHandler {
  /** `raw` is the frame as received, so events can be relayed without re-serialising. */
  onMessage(message: WorkerSessionMessage, raw: Buffer): void;
  /** The connection is gone (lost, closed by either side). Called once. */
  onClose(code: ErrorCode, reason: string): void;
}

type CallMessage = Extract<OrchestratorMessage, { callId: string }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

interface PendingCall {
  resolve(value: unknown): void;
  reject(error: TetherError): void;
  timer: NodeJS.Timeout | undefined;
}

export type WorkerConnectionState = "open" | "closed";

/**
 * One worker's websocket after the handshake: typed calls correlated by
 * callId (all settled with a specific code when the socket goes), file byte
 * streams with credit-based flow control, and the heartbeat.
 */
export class WorkerConnection {
  state: WorkerConnectionState = "open";
  private handler: WorkerConnectionHandler | undefined;
  private nextCallId = 1;
  private nextStreamId = 1;
  private readonly calls = new Map<string, PendingCall>();
  private readonly downloads = new Map<number, DownloadStream>();
  private readonly uploads = new Map<number, UploadCredit>();
  private readonly pausers = new Set<object>();
  private lastPongAt = Date.now();
  private readonly heartbeat: NodeJS.Timeout;
  private closeReason: { code: ErrorCode; message: string } | undefined;

  constructor(
    private readonly socket: WebSocket,
    readonly workerId: string,
    readonly sessionId: string,
    private readonly heartbeatIntervalMs: number,
    private readonly logger: Logger,
  ) {
    socket.on("message", (data, isBinary) => this.onFrame(data, isBinary));
    socket.on("pong", () => (this.lastPongAt = Date.now()));
    socket.on("close", (code, reason) => this.onSocketClose(code, reason.toString()));
    socket.on("error", (error) => this.logger.warn({ err: error }, "worker socket error"));
    this.heartbeat = setInterval(() => this.beat(), heartbeatIntervalMs);
  }

  setHandler(handler: WorkerConnectionHandler): void {
    this.handler = handler;
  }

  send(message: OrchestratorMessage): boolean {
    if (this.state !== "open") return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Sends a call and resolves with the worker's call_result value. `timeoutMs` 0 = no timeout. */
  call(message: DistributiveOmit<CallMessage, "callId">, timeoutMs: number): Promise<unknown> {
    if (this.state !== "open") return Promise.reject(this.lostError());
    const callId = String(this.nextCallId++);
    return new Promise<unknown>((resolve, reject) => {
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.calls.delete(callId);
              reject(tetherError(ErrorCodes.WORKER_CALL_TIMEOUT, `The worker did not answer '${message.type}' within ${timeoutMs} ms.`));
            }, timeoutMs)
          : undefined;
      this.calls.set(callId, { resolve, reject, timer });
      this.send({ ...message, callId } as CallMessage);
    });
  }

  /** Opens a download: resolves with the file size and a stream of its bytes, acked as they are read. */
  async download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    const streamId = this.nextStreamId++;
    const stream = new DownloadStream(streamId, this);
    // Registered before the call: bytes may follow call_result in the same tick.
    this.downloads.set(streamId, stream);
    try {
      const value = (await this.call({ type: "file_download", path, streamId }, timeoutMs)) as { size?: unknown };
      return { size: typeof value?.size === "number" ? value.size : -1, stream };
    } catch (error) {
      this.downloads.delete(streamId);
      stream.destroy();
      throw error;
    }
  }

  /**
   * Streams `source` to the worker as `path`, never more than the window
   * unacknowledged. Resolves with the worker's final call_result value.
   */
  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<unknown> {
    const streamId = this.nextStreamId++;
    const credit = new UploadCredit();
    this.uploads.set(streamId, credit);
    const result = this.call({ type: "file_upload", path, streamId }, 0);
    // An early refusal (bad path, symlink) must wake a sender waiting for credit.
    result.catch((error: unknown) => credit.abort(error as Error));
    let total = 0;
    try {
      for await (const chunk of source) {
        for (let offset = 0; offset < chunk.byteLength; offset += FILE_CHUNK_BYTES) {
          const piece = chunk.subarray(offset, offset + FILE_CHUNK_BYTES);
          total += piece.byteLength;
          if (total > maxBytes) {
            throw tetherError(ErrorCodes.FILE_TOO_LARGE, `The upload is larger than the limit of ${maxBytes} bytes.`, {
              hint: "Raise TETHER_MAX_UPLOAD_BYTES on the orchestrator.",
            });
          }
          await credit.reserve(piece.byteLength);
          if (this.state !== "open") throw this.lostError();
          this.socket.send(encodeBinaryFrame(streamId, piece));
        }
      }
      this.send({ type: "stream_end", streamId });
      return await result;
    } catch (error) {
      this.send({ type: "stream_end", streamId, error: { code: ErrorCodes.FILE_IO, message: "The upload was aborted." } });
      // Prefer the worker's own reason when it refused the upload.
      if (credit.abortedWith) throw credit.abortedWith;
      throw error;
    } finally {
      this.uploads.delete(streamId);
    }
  }

  /** Stops reading the worker socket until every pauser resumed (client backpressure). */
  pause(pauser: object): void {
    if (this.pausers.has(pauser)) return;
    this.pausers.add(pauser);
    if (this.pausers.size === 1) this.socket.pause();
  }

  resume(pauser: object): void {
    if (!this.pausers.delete(pauser)) return;
    if (this.pausers.size === 0 && this.state === "open") {
      this.socket.resume();
      // Pongs were not read while paused; that silence is ours, not the worker's.
      this.lastPongAt = Date.now();
    }
  }

  /** Closes the socket; the handler's onClose still runs once. */
  close(code: number = WorkerCloseCodes.shutdown, reason = "session ended"): void {
    if (this.state !== "open") return;
    this.closeReason ??= { code: ErrorCodes.WORKER_LOST, message: `The worker connection was closed: ${reason}.` };
    this.socket.close(code, reason);
    // A worker that never answers the close handshake must not keep the socket.
    setTimeout(() => this.socket.terminate(), 2000).unref();
  }

  /** @internal used by DownloadStream. */
  ack(streamId: number, bytes: number): void {
    if (bytes > 0) this.send({ type: "stream_ack", streamId, bytes });
  }

  /** @internal a download the HTTP client abandoned: tell the worker to stop sending. */
  cancelDownload(streamId: number): void {
    if (!this.downloads.delete(streamId)) return;
    this.send({ type: "stream_end", streamId, error: { code: ErrorCodes.FILE_IO, message: "The download was cancelled by the client." } });
  }

  private beat(): void {
    if (this.state !== "open") return;
    if (this.pausers.size > 0) return;
    if (Date.now() - this.lastPongAt >= 3 * this.heartbeatIntervalMs) {
      this.closeReason = { code: ErrorCodes.WORKER_LOST, message: `The worker stopped answering heartbeats (no pong for ${3 * this.heartbeatIntervalMs} ms).` };
      this.logger.warn("worker missed 3 heartbeats; treating it as lost");
      this.socket.terminate();
      return;
    }
    this.socket.ping();
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    const buffer = data as Buffer;
    if (isBinary) {
      const frame = decodeBinaryFrame(buffer);
      const stream = frame ? this.downloads.get(frame.streamId) : undefined;
      if (!frame || !stream) {
        this.logger.debug({ streamId: frame?.streamId }, "binary frame for no open download; dropped");
        return;
      }
      stream.deliver(frame.payload);
      return;
    }
    const decoded = workerCodec.decode(buffer.toString("utf8"));
    if (!decoded.ok) {
      this.logger.warn({ code: decoded.code, message: decoded.message }, "invalid frame from worker");
      this.send({ type: "protocol_error", requestId: decoded.requestId, code: decoded.code, message: decoded.message });
      return;
    }
    const message = decoded.value;
    switch (message.type) {
      case "call_result": {
        const pending = this.calls.get(message.callId);
        if (!pending) return;
        this.calls.delete(message.callId);
        if (pending.timer) clearTimeout(pending.timer);
        if (message.ok) pending.resolve(message.value);
        else pending.reject(errorFromDetail(message.error));
        return;
      }
      case "stream_ack":
        this.uploads.get(message.streamId)?.release(message.bytes);
        return;
      case "stream_end": {
        const stream = this.downloads.get(message.streamId);
        if (!stream) return;
        this.downloads.delete(message.streamId);
        stream.finish(message.error ? errorFromDetail(message.error) : undefined);
        return;
      }
      case "hello":
        this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: "hello was already received." });
        return;
      case "worker_ready":
      case "worker_failed":
      case "stream":
      case "display":
      case "result":
      case "error":
      case "clear_output":
      case "input_request":
      case "status":
      case "kernel_died":
      case "done":
      case "protocol_error":
        this.handler?.onMessage(message, buffer);
        return;
      default: {
        const unreachable: never = message;
        return unreachable;
      }
    }
  }

  private onSocketClose(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearInterval(this.heartbeat);
    const cause = this.closeReason ?? {
      code: ErrorCodes.WORKER_LOST,
      message: `The worker connection closed unexpectedly (code ${code}${reason ? `: ${reason}` : ""}).`,
    };
    this.closeReason = cause;
    const error = this.lostError();
    for (const pending of this.calls.values()) {
      if (pending.timer) clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.calls.clear();
    for (const stream of this.downloads.values()) stream.finish(error);
    this.downloads.clear();
    for (const credit of this.uploads.values()) credit.abort(error);
    this.uploads.clear();
    this.handler?.onClose(cause.code, cause.message);
  }

  private lostError(): TetherError {
    const cause = this.closeReason ?? { code: ErrorCodes.WORKER_LOST, message: "The worker connection is closed." };
    return tetherError(cause.code, cause.message);
  }
}

/** The receiving end of a file_download: a Readable that acks bytes as its consumer pulls them. */
class DownloadStream extends Readable {
  private unackedBytes = 0;
  private ended = false;

  constructor(
    private readonly streamId: number,
    private readonly connection: WorkerConnection,
  ) {
    super({ highWaterMark: FILE_CHUNK_BYTES });
  }

  deliver(payload: Uint8Array): void {
    if (this.ended || this.destroyed) return;
    // Credit goes back only once the consumer has room, so at most one window is ever buffered here.
    if (this.push(payload)) this.connection.ack(this.streamId, payload.byteLength);
    else this.unackedBytes += payload.byteLength;
  }

  finish(error: Error | undefined): void {
    if (this.ended) return;
    this.ended = true;
    if (error) this.destroy(error);
    else this.push(null);
  }

  override _read(): void {
    if (this.unackedBytes === 0) return;
    const bytes = this.unackedBytes;
    this.unackedBytes = 0;
    this.connection.ack(this.streamId, bytes);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended) {
      this.ended = true;
      this.connection.cancelDownload(this.streamId);
    }
    callback(error);
  }
}

/** Sender-side credit of one upload stream: at most STREAM_WINDOW_BYTES in flight. */
class UploadCredit {
  private inFlightBytes = 0;
  private waiter: { bytes: number; resolve(): void; reject(error: Error): void } | undefined;
  abortedWith: Error | undefined;

  reserve(bytes: number): Promise<void> {
    if (this.abortedWith) return Promise.reject(this.abortedWith);
    if (this.inFlightBytes + bytes <= STREAM_WINDOW_BYTES || this.inFlightBytes === 0) {
      this.inFlightBytes += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => (this.waiter = { bytes, resolve, reject }));
  }

  release(bytes: number): void {
    this.inFlightBytes = Math.max(0, this.inFlightBytes - bytes);
    const waiter = this.waiter;
    if (waiter && this.inFlightBytes + waiter.bytes <= STREAM_WINDOW_BYTES) {
      this.waiter = undefined;
      this.inFlightBytes += waiter.bytes;
      waiter.resolve();
    }
  }

  abort(error: Error): void {
    this.abortedWith ??= error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }
}
