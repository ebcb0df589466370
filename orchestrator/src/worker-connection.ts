import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Readable } from "node:stream";
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import {
  FILE_CHUNK_BYTES,
  InboundSequence,
  MessageCodec,
  ReplayBuffer,
  STREAM_WINDOW_BYTES,
  WorkerCloseCodes,
  WorkerMessage,
  decodeBinaryFrame,
  encodeBinaryFrame,
  encodeSequenced,
  type OrchestratorMessage,
} from "@tether/shared";
import { ErrorCodes, TetherError, errorFromDetail, tetherError, uploadTooLarge, type ErrorCode } from "./errors.js";

/** Decodes every frame a worker sends; built once, shared by all connections. */
export const workerCodec = new MessageCodec(WorkerMessage);

/** Messages the connection hands to its session (calls and streams it settles itself). */
export type WorkerSessionMessage = Exclude<WorkerMessage, { type: "call_result" | "stream_ack" | "stream_end" | "hello" | "ack" | "resume" }>;

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

/** `open` until the worker is gone for good; a dropped socket held for resume is still `open` (see `link`). */
export type WorkerConnectionState = "open" | "closed";
/** The socket under an open connection: up, or dropped and waiting for the worker's resume. */
export type WorkerLinkState = "connected" | "disconnected";

/** How many heartbeat intervals a dropped link is held for the worker's resume. */
export const RESUME_HOLD_INTERVALS = 3;

export interface WorkerConnectionOptions {
  /**
   * The worker advertised `resume` (protocol 1.1): frames are sequenced and
   * acked both ways, and a dropped socket is held RESUME_HOLD_INTERVALS
   * heartbeats for the worker to resume over a new one. Default false.
   */
  resumable?: boolean;
}

/**
 * One worker's websocket after the handshake: typed calls correlated by
 * callId (all settled with a specific code when the worker is gone), file
 * byte streams with credit-based flow control, and the heartbeat. With a
 * resumable worker the connection outlives its socket: messages are kept
 * until acked, a resume rebinds a new socket and retransmits what the worker
 * missed, and only a worker that stays away past the hold is lost.
 */
export class WorkerConnection {
  state: WorkerConnectionState = "open";
  link: WorkerLinkState = "connected";
  readonly resumable: boolean;
  private socket!: WebSocket;
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
  private readonly closedCallbacks: (() => void)[] = [];
  /** Resumable only: what the worker has not acked yet, and the worker's frames seen so far. */
  private readonly outbound: ReplayBuffer<Buffer> | undefined;
  private readonly inbound: InboundSequence | undefined;
  private resumeDigest: Buffer | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private droppedAt = 0;

  constructor(
    socket: WebSocket,
    readonly workerId: string,
    /** null for a warm-pool worker not yet claimed. */
    readonly sessionId: string | null,
    private readonly heartbeatIntervalMs: number,
    private readonly logger: Logger,
    options: WorkerConnectionOptions = {},
  ) {
    this.resumable = options.resumable === true;
    if (this.resumable) {
      this.outbound = new ReplayBuffer<Buffer>();
      this.inbound = new InboundSequence((seq) => this.sendUnsequenced({ type: "ack", seq }));
    }
    this.bind(socket);
    this.heartbeat = setInterval(() => this.beat(), heartbeatIntervalMs);
  }

  setHandler(handler: WorkerConnectionHandler): void {
    this.handler = handler;
  }

  /**
   * Sends a message; false once the worker is gone. With a resumable worker
   * it is sequenced and kept until acked, so a message sent while the link is
   * down goes out when the worker resumes.
   */
  send(message: OrchestratorMessage): boolean {
    if (this.state !== "open") return false;
    const json = JSON.stringify(message);
    if (!this.outbound) {
      this.socket.send(json);
      return true;
    }
    const frame = this.outbound.append((seq) => Buffer.from(encodeSequenced(seq, json)));
    if (this.link === "connected") this.socket.send(frame, { binary: false });
    return true;
  }

  /** Handshake and link control (welcome, resumed, ack): never sequenced, dropped while the link is down. */
  sendUnsequenced(message: OrchestratorMessage): boolean {
    if (this.state !== "open" || this.link !== "connected") return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** A fresh resume credential for welcome or resumed; only its digest is kept, and the previous one stops working. */
  issueResumeToken(): string {
    const token = randomBytes(32).toString("base64url");
    this.resumeDigest = digestOf(token);
    return token;
  }

  /** Runs once the connection is closed for good (not on a drop it may resume from). */
  onClosed(callback: () => void): void {
    if (this.state === "closed") callback();
    else this.closedCallbacks.push(callback);
  }

  /**
   * A resume frame for this worker arrived on `socket`. On success the new
   * socket replaces the old one (which is dropped if it still looked open),
   * the worker is told how far we got, and what it missed is retransmitted.
   */
  resumeLink(socket: WebSocket, resumeToken: string, lastSeqReceived: number): { ok: true } | { ok: false; code: ErrorCode; message: string } {
    const refused = (message: string) => ({ ok: false as const, code: ErrorCodes.WORKER_RESUME_REFUSED, message });
    if (this.state !== "open" || !this.outbound || !this.inbound || !this.resumeDigest) return refused("This worker can no longer be resumed.");
    if (!timingSafeEqual(digestOf(resumeToken), this.resumeDigest)) return refused("The resume token is not valid for this worker.");
    const replay = this.outbound.ack(lastSeqReceived) ? this.outbound.framesAfter(lastSeqReceived) : undefined;
    if (!replay) return refused(`lastSeqReceived ${lastSeqReceived} does not match what was sent (${this.outbound.lastSeq}).`);
    const gapMs = this.link === "disconnected" ? Date.now() - this.droppedAt : 0;
    if (this.link === "connected") {
      // The worker saw the drop first (half-open socket): this one is dead to it.
      this.logger.info("worker resumed while its old socket still looked open; dropping the old one");
      const old = this.socket;
      this.socket = socket;
      old.terminate();
      this.interruptTransfers();
    }
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.bind(socket);
    this.link = "connected";
    this.lastPongAt = Date.now();
    this.sendUnsequenced({ type: "resumed", resumeToken: this.issueResumeToken(), lastSeqReceived: this.inbound.lastDelivered });
    this.inbound.acknowledgedByHandshake();
    for (const frame of replay) socket.send(frame, { binary: false });
    if (this.pausers.size > 0) socket.pause();
    this.logger.info({ gapMs, retransmitted: replay.length, workerDelivered: lastSeqReceived, weDelivered: this.inbound.lastDelivered }, "worker link resumed");
    return { ok: true };
  }

  /** Sends a call and resolves with the worker's call_result value. `timeoutMs` 0 = no timeout. */
  call(message: DistributiveOmit<CallMessage, "callId">, timeoutMs: number): Promise<unknown> {
    return this.startCall(message, timeoutMs).result;
  }

  private startCall(message: DistributiveOmit<CallMessage, "callId">, timeoutMs: number): { callId: string; result: Promise<unknown> } {
    const callId = String(this.nextCallId++);
    if (this.state !== "open") return { callId, result: Promise.reject(this.lostError()) };
    const result = new Promise<unknown>((resolve, reject) => {
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
    return { callId, result };
  }

  /** Settles a pending call ourselves (its answer, should it still come, is ignored). */
  private forgetCall(callId: string, error: TetherError): void {
    const pending = this.calls.get(callId);
    if (!pending) return;
    this.calls.delete(callId);
    if (pending.timer) clearTimeout(pending.timer);
    pending.reject(error);
  }

  /** Opens a download: resolves with the file size and a stream of its bytes, acked as they are read. */
  async download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    const streamId = this.nextStreamId++;
    const stream = new DownloadStream(streamId, this);
    // Registered before the call: bytes may follow call_result in the same tick.
    this.downloads.set(streamId, stream);
    try {
      const value = (await this.call({ type: "file_download", path, streamId }, timeoutMs)) as { size?: unknown };
      // The link dropped between the request and its answer: the bytes will not come.
      if (stream.failedWith) throw stream.failedWith;
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
    const { callId, result } = this.startCall({ type: "file_upload", path, streamId }, 0);
    // An early refusal (bad path, symlink) must wake a sender waiting for credit.
    result.catch((error: unknown) => credit.abort(error as Error));
    let total = 0;
    try {
      for await (const chunk of source) {
        for (let offset = 0; offset < chunk.byteLength; offset += FILE_CHUNK_BYTES) {
          const piece = chunk.subarray(offset, offset + FILE_CHUNK_BYTES);
          total += piece.byteLength;
          if (total > maxBytes) throw uploadTooLarge(maxBytes);
          await credit.reserve(piece.byteLength);
          if (this.state !== "open") throw this.lostError();
          if (this.link !== "connected") throw transferInterrupted();
          this.socket.send(encodeBinaryFrame(streamId, piece));
        }
      }
      this.send({ type: "stream_end", streamId });
      return await result;
    } catch (error) {
      this.send({ type: "stream_end", streamId, error: { code: ErrorCodes.FILE_IO, message: "The upload was aborted." } });
      // Prefer the worker's own reason when it refused the upload.
      const reason = credit.abortedWith ?? error;
      this.forgetCall(callId, reason instanceof TetherError ? reason : tetherError(ErrorCodes.FILE_IO, (reason as Error).message));
      throw reason;
    } finally {
      this.uploads.delete(streamId);
    }
  }

  /** Stops reading the worker socket until every pauser resumed (client backpressure). */
  pause(pauser: object): void {
    if (this.pausers.has(pauser)) return;
    this.pausers.add(pauser);
    if (this.pausers.size === 1 && this.link === "connected") this.socket.pause();
  }

  resume(pauser: object): void {
    if (!this.pausers.delete(pauser)) return;
    if (this.pausers.size === 0 && this.state === "open" && this.link === "connected") {
      this.socket.resume();
      // Pongs were not read while paused; that silence is ours, not the worker's.
      this.lastPongAt = Date.now();
    }
  }

  /** Closes the socket; the handler's onClose still runs once. */
  close(code: number = WorkerCloseCodes.shutdown, reason = "session ended"): void {
    if (this.state !== "open") return;
    this.closeReason ??= { code: ErrorCodes.WORKER_LOST, message: `The worker connection was closed: ${reason}.` };
    if (this.link === "disconnected") {
      this.finalClose(code, reason);
      return;
    }
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
    if (this.state !== "open" || this.link !== "connected") return;
    if (this.pausers.size > 0) return;
    if (Date.now() - this.lastPongAt >= 3 * this.heartbeatIntervalMs) {
      this.closeReason = { code: ErrorCodes.WORKER_LOST, message: `The worker stopped answering heartbeats (no pong for ${3 * this.heartbeatIntervalMs} ms).` };
      this.logger.warn("worker missed 3 heartbeats; treating it as lost");
      this.socket.terminate();
      return;
    }
    this.socket.ping();
  }

  private bind(socket: WebSocket): void {
    this.socket = socket;
    // Events of a replaced socket are ignored: only the current one speaks for the worker.
    socket.on("message", (data, isBinary) => {
      if (this.socket === socket) this.onFrame(data, isBinary);
    });
    socket.on("pong", () => {
      if (this.socket === socket) this.lastPongAt = Date.now();
    });
    socket.on("close", (code, reason) => {
      if (this.socket === socket) this.onSocketClose(code, reason.toString());
    });
    socket.on("error", (error) => this.logger.warn({ err: error }, "worker socket error"));
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    let buffer = data as Buffer;
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
    let sequenced = false;
    if (this.inbound) {
      const taken = this.inbound.take(buffer);
      if (taken === "duplicate") return;
      if ("gap" in taken) {
        this.logger.error(taken.gap, "a worker frame is missing; dropping the link so the worker resumes");
        this.socket.terminate();
        return;
      }
      ({ body: buffer, sequenced } = taken);
    }
    const decoded = workerCodec.decode(buffer.toString("utf8"));
    if (!decoded.ok) {
      this.logger.warn({ code: decoded.code, message: decoded.message }, "invalid frame from worker");
      this.send({ type: "protocol_error", requestId: decoded.requestId, code: decoded.code, message: decoded.message });
      return;
    }
    const message = decoded.value;
    if (this.inbound && !sequenced && message.type !== "ack") {
      this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `'${message.type}' must carry a seq on a resumable link.` });
      return;
    }
    switch (message.type) {
      case "ack":
        if (!this.outbound?.ack(message.seq)) {
          this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `ack ${message.seq} is for a frame never sent.` });
        }
        return;
      case "resume":
        this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: "resume is only valid as the first frame of a new connection." });
        return;
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
    // Closed on purpose (by us, by a missed heartbeat, by the worker stopping), or nothing to resume: gone for good.
    if (!this.resumable || this.closeReason || code === WorkerCloseCodes.shutdown) {
      this.finalClose(code, reason);
      return;
    }
    this.link = "disconnected";
    this.droppedAt = Date.now();
    this.interruptTransfers();
    const holdMs = RESUME_HOLD_INTERVALS * this.heartbeatIntervalMs;
    this.logger.warn({ code, reason, holdMs }, "worker link dropped; holding its state for a resume");
    this.holdTimer = setTimeout(() => {
      this.closeReason = {
        code: ErrorCodes.WORKER_LOST,
        message: `The worker connection dropped (code ${code}${reason ? `: ${reason}` : ""}) and the worker did not reconnect within ${holdMs} ms.`,
      };
      this.finalClose(code, reason);
    }, holdMs);
    // A hold must not keep a closing process alive.
    this.holdTimer.unref();
  }

  /** Byte streams do not survive a drop: fail them now with a code that says so. */
  private interruptTransfers(): void {
    if (this.downloads.size === 0 && this.uploads.size === 0) return;
    const error = transferInterrupted();
    for (const stream of this.downloads.values()) stream.finish(error);
    this.downloads.clear();
    for (const credit of this.uploads.values()) credit.abort(error);
  }

  private finalClose(code: number, reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    clearInterval(this.heartbeat);
    clearTimeout(this.holdTimer);
    this.inbound?.dispose();
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
    for (const callback of this.closedCallbacks.splice(0)) callback();
    this.handler?.onClose(cause.code, cause.message);
  }

  private lostError(): TetherError {
    const cause = this.closeReason ?? { code: ErrorCodes.WORKER_LOST, message: "The worker connection is closed." };
    return tetherError(cause.code, cause.message);
  }
}

function digestOf(token: string): Buffer {
  return createHash("sha256").update(token).digest();
}

function transferInterrupted(): TetherError {
  return tetherError(ErrorCodes.WORKER_TRANSFER_INTERRUPTED, "The worker connection dropped during the file transfer; byte streams do not survive a reconnect.", {
    hint: "Retry the transfer.",
  });
}

/** The receiving end of a file_download: a Readable that acks bytes as its consumer pulls them. */
class DownloadStream extends Readable {
  private unackedBytes = 0;
  private ended = false;
  failedWith: Error | undefined;

  constructor(
    private readonly streamId: number,
    private readonly connection: WorkerConnection,
  ) {
    super({ highWaterMark: FILE_CHUNK_BYTES });
    // Failed before anyone reads it (a drop while the download is being opened): the caller
    // hears about it from download(); an 'error' with no listener must not crash the process.
    this.on("error", () => undefined);
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
    this.failedWith = error;
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
