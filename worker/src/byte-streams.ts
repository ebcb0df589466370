import type { Readable } from "node:stream";
import { ErrorCodes, STREAM_WINDOW_BYTES, type ErrorDetail } from "@tether/shared";

/** Where a stream's frames and end marker go (the orchestrator channel). */
export interface StreamOutput {
  sendChunk(streamId: number, payload: Uint8Array): void;
  sendEnd(streamId: number, error?: ErrorDetail): void;
}

/**
 * Sends a readable as binary frames with credit-based flow control: at most
 * `windowBytes` unacknowledged, reading pauses until stream_ack returns credit.
 * Resolves once every byte is sent and stream_end is out.
 */
export class FlowSender {
  private unackedBytes = 0;
  private sentBytes = 0;
  private finished = false;
  readonly done: Promise<number>;

  constructor(
    readonly streamId: number,
    private readonly source: Readable,
    private readonly output: StreamOutput,
    private readonly windowBytes: number = STREAM_WINDOW_BYTES,
  ) {
    this.done = new Promise((resolve, reject) => {
      source.on("data", (chunk: Buffer) => {
        this.output.sendChunk(this.streamId, chunk);
        this.unackedBytes += chunk.byteLength;
        this.sentBytes += chunk.byteLength;
        if (this.unackedBytes >= this.windowBytes) source.pause();
      });
      source.once("end", () => {
        this.finished = true;
        this.output.sendEnd(this.streamId);
        resolve(this.sentBytes);
      });
      // Destroyed by cancel(): the receiver asked to stop, so no stream_end goes out.
      source.once("close", () => {
        if (this.finished) return;
        this.finished = true;
        resolve(this.sentBytes);
      });
      source.once("error", (error: Error) => {
        this.finished = true;
        this.output.sendEnd(this.streamId, { code: ErrorCodes.FILE_IO, message: `Reading the file failed: ${error.message}` });
        reject(error);
      });
    });
  }

  get unacknowledged(): number {
    return this.unackedBytes;
  }

  /** Credit from the receiver. */
  ack(bytes: number): void {
    this.unackedBytes = Math.max(0, this.unackedBytes - bytes);
    if (!this.finished && this.unackedBytes < this.windowBytes && this.source.isPaused()) this.source.resume();
  }

  /** The receiver went away: stop reading. */
  cancel(): void {
    this.finished = true;
    this.source.destroy();
  }
}

/** Something that consumes an incoming byte stream (an upload). */
export interface StreamSink {
  chunk(payload: Uint8Array): void;
  end(error?: ErrorDetail): void;
  /** The connection closed before the end. */
  abort(): void;
}

/** Routes stream_ack to senders and binary frames / stream_end to sinks, by stream id. */
export class StreamRegistry {
  private readonly senders = new Map<number, FlowSender>();
  private readonly sinks = new Map<number, StreamSink>();

  addSender(sender: FlowSender): void {
    this.senders.set(sender.streamId, sender);
    const forget = (): void => {
      if (this.senders.get(sender.streamId) === sender) this.senders.delete(sender.streamId);
    };
    sender.done.then(forget, forget);
  }

  addSink(streamId: number, sink: StreamSink): void {
    this.sinks.set(streamId, sink);
  }

  /** False when no sender has this id. */
  ack(streamId: number, bytes: number): boolean {
    const sender = this.senders.get(streamId);
    sender?.ack(bytes);
    return sender !== undefined;
  }

  /** False when no sink has this id. */
  chunk(streamId: number, payload: Uint8Array): boolean {
    const sink = this.sinks.get(streamId);
    sink?.chunk(payload);
    return sink !== undefined;
  }

  /** stream_end from the orchestrator: ends an upload, or cancels a download it gave up on. */
  end(streamId: number, error?: ErrorDetail): boolean {
    const sink = this.sinks.get(streamId);
    if (sink) {
      this.sinks.delete(streamId);
      sink.end(error);
      return true;
    }
    const sender = this.senders.get(streamId);
    if (sender) {
      this.senders.delete(streamId);
      sender.cancel();
      return true;
    }
    return false;
  }

  closeAll(): void {
    for (const sender of this.senders.values()) sender.cancel();
    for (const sink of this.sinks.values()) sink.abort();
    this.senders.clear();
    this.sinks.clear();
  }
}
