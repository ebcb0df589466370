import WebSocket from "ws";
import type { Logger } from "pino";
import { MessageCodec, OrchestratorMessage, decodeBinaryFrame, ErrorCodes, type WorkerMessage } from "@tether/shared";

export interface ChannelHandlers {
  onOpen(): void;
  onMessage(msg: OrchestratorMessage): void;
  onBinary(streamId: number, payload: Uint8Array): void;
  onClose(code: number, reason: string): void;
  /** No ping for 3 heartbeat intervals. */
  onHeartbeatLost(): void;
  /** The socket's send buffer crossed the high-water mark (true) or drained below the low one (false). */
  onBackpressure(paused: boolean): void;
}

/** Past this many buffered bytes, the worker stops reading kernel output until the socket drains. */
export const SEND_HIGH_WATER_BYTES = 8 * 1024 * 1024;
const SEND_LOW_WATER_BYTES = 1024 * 1024;
const DRAIN_POLL_MS = 5;
const HEARTBEAT_MISSES = 3;

const codec = new MessageCodec(OrchestratorMessage);

/**
 * The websocket the worker dials to the orchestrator: one JSON decode per text
 * frame at the edge, binary frames routed by stream id, heartbeat watchdog,
 * send-side backpressure.
 */
export class OrchestratorChannel {
  private readonly ws: WebSocket;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    url: string,
    private readonly handlers: ChannelHandlers,
    private readonly logger: Logger,
  ) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
    this.ws.on("open", () => handlers.onOpen());
    this.ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.receive(data, isBinary));
    this.ws.on("ping", () => this.armHeartbeat());
    this.ws.on("error", (error) => logger.warn({ err: error }, "orchestrator socket error"));
    this.ws.on("close", (code, reason) => {
      this.closed = true;
      this.stopTimers();
      handlers.onClose(code, reason.toString());
    });
  }

  get isOpen(): boolean {
    return !this.closed && this.ws.readyState === WebSocket.OPEN;
  }

  send(msg: WorkerMessage): void {
    if (!this.isOpen) {
      this.logger.debug({ type: msg.type }, "dropping a message: the orchestrator socket is closed");
      return;
    }
    this.ws.send(JSON.stringify(msg));
    this.checkBackpressure();
  }

  sendBinary(frame: Uint8Array): void {
    if (!this.isOpen) return;
    this.ws.send(frame, { binary: true });
    this.checkBackpressure();
  }

  /** From welcome: silence for 3 intervals means the orchestrator is gone. */
  startHeartbeat(intervalMs: number): void {
    this.heartbeatIntervalMs = intervalMs;
    this.armHeartbeat();
  }

  close(code: number, reason: string): void {
    this.stopTimers();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
  }

  /** Resolves once the socket has flushed what it buffered (bounded), so a last message is not lost on exit. */
  async flush(maxWaitMs = 2000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (this.isOpen && this.ws.bufferedAmount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }

  private receive(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      const frame = decodeBinaryFrame(buffer);
      if (!frame) {
        this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: "A binary frame shorter than its 4-byte stream id." });
        return;
      }
      this.handlers.onBinary(frame.streamId, frame.payload);
      return;
    }
    const decoded = codec.decode(buffer.toString("utf8"));
    if (!decoded.ok) {
      this.logger.warn({ code: decoded.code, message: decoded.message }, "refused a frame from the orchestrator");
      this.send({ type: "protocol_error", requestId: decoded.requestId, code: decoded.code, message: decoded.message });
      return;
    }
    this.handlers.onMessage(decoded.value);
  }

  private armHeartbeat(): void {
    if (this.heartbeatIntervalMs <= 0 || this.closed) return;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => this.handlers.onHeartbeatLost(), this.heartbeatIntervalMs * HEARTBEAT_MISSES);
  }

  private checkBackpressure(): void {
    if (this.drainTimer || this.ws.bufferedAmount < SEND_HIGH_WATER_BYTES) return;
    this.handlers.onBackpressure(true);
    // ws has no drain event of its own; polling a few ms is cheap and only happens while backed up.
    this.drainTimer = setInterval(() => {
      if (this.isOpen && this.ws.bufferedAmount > SEND_LOW_WATER_BYTES) return;
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
      this.handlers.onBackpressure(false);
    }, DRAIN_POLL_MS);
  }

  private stopTimers(): void {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }
}
