import { Readable } from "node:stream";
import { FILE_CHUNK_BYTES, STREAM_WINDOW_BYTES, encodeBinaryFrame, type OrchestratorMessage, type WorkerCallParams, type WorkerCallResult, type WorkerCallType } from "@tether/shared";
import { ErrorCodes, TetherError, errorFromDetail, tetherError, uploadTooLarge } from "../errors.js";

/** What the file streams need of the worker connection. */
export interface StreamPort {
  send(message: OrchestratorMessage): boolean;
  sendBinary(frame: Uint8Array): void;
  /** The socket is up right now (byte streams do not survive a drop). */
  isConnected(): boolean;
  /** Why the connection is gone, once it is. */
  goneError(): TetherError | undefined;
  startCall<T extends WorkerCallType>(type: T, params: WorkerCallParams<T>, timeoutMs: number): { callId: string; result: Promise<WorkerCallResult<T>> };
  failCall(callId: string, error: TetherError): void;
}

/**
 * File bytes to and from one worker: binary frames tagged with a stream id,
 * credit-based flow control (never more than STREAM_WINDOW_BYTES
 * unacknowledged per stream), neither side holding a whole file.
 */
export class FileStreams {
  private nextStreamId = 1;
  private readonly downloads = new Map<number, DownloadStream>();
  private readonly uploads = new Map<number, UploadCredit>();

  constructor(private readonly port: StreamPort) {}

  /** Opens a download: resolves with the file size and a stream of its bytes, acked as they are read. */
  async download(path: string, timeoutMs: number): Promise<{ size: number; stream: Readable }> {
    const streamId = this.nextStreamId++;
    const stream = new DownloadStream(streamId, this);
    // Registered before the call: bytes may follow call_result in the same tick.
    this.downloads.set(streamId, stream);
    try {
      const { size } = await this.port.startCall("file_download", { path, streamId }, timeoutMs).result;
      // The link dropped between the request and its answer: the bytes will not come.
      if (stream.failedWith) throw stream.failedWith;
      return { size, stream };
    } catch (error) {
      this.downloads.delete(streamId);
      stream.destroy();
      throw error;
    }
  }

  /** Streams `source` to the worker as `path`; resolves with the worker's answer once the file is on disk. */
  async upload(path: string, source: AsyncIterable<Buffer | Uint8Array>, maxBytes: number): Promise<WorkerCallResult<"file_upload">> {
    const streamId = this.nextStreamId++;
    const credit = new UploadCredit();
    this.uploads.set(streamId, credit);
    const { callId, result } = this.port.startCall("file_upload", { path, streamId }, 0);
    // An early refusal (bad path, symlink) must wake a sender waiting for credit.
    result.catch((error: unknown) => credit.abort(error instanceof Error ? error : new Error(String(error))));
    let total = 0;
    try {
      for await (const chunk of source) {
        for (let offset = 0; offset < chunk.byteLength; offset += FILE_CHUNK_BYTES) {
          const piece = chunk.subarray(offset, offset + FILE_CHUNK_BYTES);
          total += piece.byteLength;
          if (total > maxBytes) throw uploadTooLarge(maxBytes);
          await credit.reserve(piece.byteLength);
          const gone = this.port.goneError();
          if (gone) throw gone;
          if (!this.port.isConnected()) throw transferInterrupted();
          this.port.sendBinary(encodeBinaryFrame(streamId, piece));
        }
      }
      this.port.send({ type: "stream_end", streamId });
      return await result;
    } catch (error) {
      this.port.send({ type: "stream_end", streamId, error: { code: ErrorCodes.FILE_IO, message: "The upload was aborted." } });
      // Prefer the worker's own reason when it refused the upload.
      const reason = credit.abortedWith ?? error;
      const tether = reason instanceof TetherError ? reason : tetherError(ErrorCodes.FILE_IO, reason instanceof Error ? reason.message : String(reason));
      this.port.failCall(callId, tether);
      throw tether;
    } finally {
      this.uploads.delete(streamId);
    }
  }

  /** A binary frame from the worker: bytes of a download. False when no download has that id. */
  deliver(streamId: number, payload: Uint8Array): boolean {
    const stream = this.downloads.get(streamId);
    stream?.deliver(payload);
    return stream !== undefined;
  }

  /** stream_ack: the worker consumed `bytes` more of an upload. */
  credit(streamId: number, bytes: number): void {
    this.uploads.get(streamId)?.release(bytes);
  }

  /** stream_end: a download's bytes are all sent, or the worker gave up. */
  ended(streamId: number, error: { code: string; message: string } | undefined): void {
    const stream = this.downloads.get(streamId);
    if (!stream) return;
    this.downloads.delete(streamId);
    stream.finish(error ? errorFromDetail(error) : undefined);
  }

  /** Ends every stream with `error` (the link dropped, or the worker is gone). */
  failAll(error: TetherError): void {
    for (const stream of this.downloads.values()) stream.finish(error);
    this.downloads.clear();
    for (const credit of this.uploads.values()) credit.abort(error);
  }

  /** @internal DownloadStream: credit for bytes its consumer read. */
  ack(streamId: number, bytes: number): void {
    if (bytes > 0) this.port.send({ type: "stream_ack", streamId, bytes });
  }

  /** @internal DownloadStream: the HTTP client abandoned the download; tell the worker to stop sending. */
  cancel(streamId: number): void {
    if (!this.downloads.delete(streamId)) return;
    this.port.send({ type: "stream_end", streamId, error: { code: ErrorCodes.FILE_IO, message: "The download was cancelled by the client." } });
  }
}

export function transferInterrupted(): TetherError {
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
    private readonly streams: FileStreams,
  ) {
    super({ highWaterMark: FILE_CHUNK_BYTES });
    // Failed before anyone reads it (a drop while the download is being opened): the caller
    // hears about it from download(); an 'error' with no listener must not crash the process.
    this.on("error", () => undefined);
  }

  deliver(payload: Uint8Array): void {
    if (this.ended || this.destroyed) return;
    // Credit goes back only once the consumer has room, so at most one window is ever buffered here.
    if (this.push(payload)) this.streams.ack(this.streamId, payload.byteLength);
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
    this.streams.ack(this.streamId, bytes);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.ended) {
      this.ended = true;
      this.streams.cancel(this.streamId);
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
