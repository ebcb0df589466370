import WebSocket from "ws";
import type { Logger } from "pino";
import {
  InboundSequence,
  MessageCodec,
  OrchestratorMessage,
  PROTOCOL_VERSION,
  ReplayBuffer,
  WorkerCloseCodes,
  decodeBinaryFrame,
  encodeSequenced,
  ErrorCodes,
  type Resumed,
  type WorkerMessage,
} from "@tether/shared";
import { reconnectDelayMs } from "./reconnect-backoff.js";

/** What the agent handles; link control (ack, resumed) stays inside the channel. */
export type AgentMessage = Exclude<OrchestratorMessage, { type: "ack" | "resumed" }>;

export interface ChannelHandlers {
  /** The first socket is open: say hello. */
  onOpen(): void;
  onMessage(msg: AgentMessage): void;
  onBinary(streamId: number, payload: Uint8Array): void;
  /** The channel is gone for good (refused, closed on purpose, or dropped without resume support). */
  onClose(code: number, reason: string): void;
  /** No ping for 3 heartbeat intervals on a link that cannot resume. */
  onHeartbeatLost(): void;
  /** Kernel output should stop (true) or may flow again (false): the socket or the replay buffer is backed up. */
  onBackpressure(paused: boolean): void;
  /** A resumable link dropped; the channel is reconnecting. Byte streams of the old socket are void. */
  onLinkDown(reason: string): void;
  /** The link resumed; messages sent meanwhile have been retransmitted. */
  onLinkUp(gapMs: number): void;
  /** Reconnecting failed (refused, or past the deadline): the orchestrator has let this worker go. */
  onResumeFailed(reason: string): void;
}

/** Channel lifecycle: `connecting` (first dial, before welcome), `open`, `reconnecting` (resumable link down), `closed`. */
export type ChannelState = "connecting" | "open" | "reconnecting" | "closed";

/** Past this many buffered bytes, the worker stops reading kernel output until the socket drains. */
export const SEND_HIGH_WATER_BYTES = 8 * 1024 * 1024;
const SEND_LOW_WATER_BYTES = 1024 * 1024;
/**
 * Unacknowledged output kept for retransmission after a reconnect. Past this,
 * kernel output stops being read (it waits in the kernel's buffers) until acks
 * release room, so a long gap costs memory only up to here.
 */
export const REPLAY_MAX_BYTES = 64 * 1024 * 1024;
const REPLAY_LOW_WATER_BYTES = 48 * 1024 * 1024;
const DRAIN_POLL_MS = 5;
const HEARTBEAT_MISSES = 3;
/**
 * A dropped worker redials for this many heartbeat intervals: the
 * orchestrator holds its state for 3 from when it saw the drop, and one more
 * covers the two ends noticing at different times. Past the hold a resume is
 * refused anyway, so trying longer gains nothing.
 */
const RECONNECT_WINDOW_INTERVALS = HEARTBEAT_MISSES + 1;
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** Close codes by which the orchestrator (or we) ended the channel on purpose: never reconnect after these. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set(Object.values(WorkerCloseCodes));

const codec = new MessageCodec(OrchestratorMessage);

/**
 * The websocket the worker dials to the orchestrator: one JSON decode per text
 * frame at the edge, binary frames routed by stream id, heartbeat watchdog,
 * send-side backpressure. When welcome carries a resume token (protocol 1.1),
 * the channel also makes the link survive drops: every frame is sequenced and
 * kept until acked, and after a drop it redials with backoff, resumes with the
 * token, and retransmits what the orchestrator missed, until the orchestrator
 * refuses or the reconnect window (RECONNECT_WINDOW_INTERVALS) ends.
 */
export class OrchestratorChannel {
  private ws!: WebSocket;
  private state: ChannelState = "connecting";
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  private closing = false;
  // Resumable link (set by a welcome with a resumeToken).
  private workerId: string | undefined;
  private resumeToken: string | undefined;
  private replay: ReplayBuffer<Buffer> | undefined;
  private inbound: InboundSequence | undefined;
  private reconnectAttempt = 0;
  private reconnectDeadline = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private droppedAt = 0;

  constructor(
    private readonly url: string,
    private readonly handlers: ChannelHandlers,
    private readonly logger: Logger,
  ) {
    this.dial();
  }

  get isOpen(): boolean {
    return this.state !== "closed" && this.state !== "reconnecting" && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a message. On a resumable link it is sequenced and kept until
   * acked, so one sent while reconnecting goes out once the link resumes;
   * otherwise a message sent while the socket is closed is dropped.
   */
  send(msg: WorkerMessage): void {
    if (this.state === "closed") {
      this.logger.debug({ type: msg.type }, "dropping a message: the orchestrator channel is closed");
      return;
    }
    const json = JSON.stringify(msg);
    if (!this.replay) {
      if (!this.isOpen) {
        this.logger.debug({ type: msg.type }, "dropping a message: the orchestrator socket is closed");
        return;
      }
      this.ws.send(json);
    } else {
      const frame = this.replay.append((seq) => Buffer.from(encodeSequenced(seq, json)));
      if (this.state === "open") this.ws.send(frame, { binary: false });
    }
    this.checkBackpressure();
  }

  /** File bytes: not sequenced, dropped while the link is down (the transfer is void anyway). */
  sendBinary(frame: Uint8Array): void {
    if (!this.isOpen) return;
    this.ws.send(frame, { binary: true });
    this.checkBackpressure();
  }

  /** From welcome: silence for 3 intervals means the orchestrator (or the link) is gone. */
  startHeartbeat(intervalMs: number): void {
    this.heartbeatIntervalMs = intervalMs;
    this.armHeartbeat();
  }

  close(code: number, reason: string): void {
    this.closing = true;
    this.stopTimers();
    clearTimeout(this.reconnectTimer);
    this.inbound?.dispose();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code, reason);
    else this.state = "closed";
  }

  /** Resolves once the socket has flushed what it buffered (bounded), so a last message is not lost on exit. */
  async flush(maxWaitMs = 2000): Promise<void> {
    const deadline = Date.now() + maxWaitMs;
    while (this.isOpen && this.ws.bufferedAmount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, DRAIN_POLL_MS));
  }

  private dial(): void {
    const reconnecting = this.state === "reconnecting";
    const ws = new WebSocket(this.url, {
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD_BYTES,
      // A redial must not outlive the deadline by much: an unreachable host otherwise hangs for the OS connect timeout.
      ...(reconnecting ? { handshakeTimeout: Math.max(250, Math.min(5000, this.reconnectDeadline - Date.now())) } : {}),
    });
    this.ws = ws;
    ws.on("open", () => {
      if (ws !== this.ws) return;
      if (this.state === "connecting") this.handlers.onOpen();
      else if (this.state === "reconnecting") this.sendResume();
    });
    ws.on("message", (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (ws === this.ws) this.receive(data, isBinary);
    });
    ws.on("ping", () => {
      if (ws === this.ws) this.armHeartbeat();
    });
    ws.on("error", (error) => {
      if (this.state === "reconnecting") this.logger.debug({ err: error }, "reconnect attempt failed");
      else this.logger.warn({ err: error }, "orchestrator socket error");
    });
    ws.on("close", (code, reason) => {
      if (ws === this.ws) this.onSocketClose(code, reason.toString());
    });
  }

  private onSocketClose(code: number, reason: string): void {
    this.stopHeartbeat();
    if (this.state === "closed") return;
    const resumable = this.replay !== undefined && this.state !== "connecting";
    if (this.closing || !resumable || FINAL_CLOSE_CODES.has(code)) {
      this.state = "closed";
      this.stopTimers();
      this.inbound?.dispose();
      this.handlers.onClose(code, reason);
      return;
    }
    if (this.state === "open") {
      this.state = "reconnecting";
      this.droppedAt = Date.now();
      this.reconnectAttempt = 0;
      this.reconnectDeadline = this.droppedAt + RECONNECT_WINDOW_INTERVALS * this.heartbeatIntervalMs;
      this.logger.warn({ code, reason, deadlineMs: this.reconnectDeadline - this.droppedAt }, "the orchestrator link dropped; reconnecting");
      this.handlers.onLinkDown(`connection closed (${code})`);
    }
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const remainingMs = this.reconnectDeadline - Date.now();
    if (remainingMs <= 0) {
      this.giveUp(`could not resume the link within ${RECONNECT_WINDOW_INTERVALS * this.heartbeatIntervalMs} ms`);
      return;
    }
    const delayMs = Math.min(reconnectDelayMs(this.reconnectAttempt++), remainingMs);
    this.reconnectTimer = setTimeout(() => this.dial(), delayMs);
  }

  private sendResume(): void {
    if (!this.workerId || !this.resumeToken || !this.inbound) return;
    this.logger.debug({ attempt: this.reconnectAttempt }, "reconnected; resuming");
    this.ws.send(
      JSON.stringify({
        type: "resume",
        protocolVersion: PROTOCOL_VERSION,
        workerId: this.workerId,
        resumeToken: this.resumeToken,
        lastSeqReceived: this.inbound.lastDelivered,
      } satisfies WorkerMessage),
    );
    // An orchestrator that accepts the socket and then says nothing is treated like a silent one.
    this.armHeartbeat();
  }

  private onResumed(msg: Resumed): void {
    if (this.state !== "reconnecting" || !this.replay || !this.inbound) return;
    this.resumeToken = msg.resumeToken;
    const frames = this.replay.ack(msg.lastSeqReceived) ? this.replay.framesAfter(msg.lastSeqReceived) : undefined;
    if (!frames) {
      this.giveUp(`the orchestrator delivered up to ${msg.lastSeqReceived}, which does not match what was sent (${this.replay.lastSeq})`);
      return;
    }
    this.state = "open";
    this.inbound.acknowledgedByHandshake();
    for (const frame of frames) this.ws.send(frame, { binary: false });
    const gapMs = Date.now() - this.droppedAt;
    this.logger.info({ gapMs, attempts: this.reconnectAttempt, retransmitted: frames.length }, "the orchestrator link resumed");
    this.armHeartbeat();
    this.handlers.onLinkUp(gapMs);
    this.checkBackpressure();
  }

  private giveUp(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopTimers();
    clearTimeout(this.reconnectTimer);
    this.inbound?.dispose();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    this.logger.error({ reason }, "giving up on the orchestrator link");
    this.handlers.onResumeFailed(reason);
  }

  private receive(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    let buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      const frame = decodeBinaryFrame(buffer);
      if (!frame) {
        this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: "A binary frame shorter than its 4-byte stream id." });
        return;
      }
      this.handlers.onBinary(frame.streamId, frame.payload);
      return;
    }
    let sequenced = false;
    if (this.inbound && this.state === "open") {
      const taken = this.inbound.take(buffer);
      if (taken === "duplicate") return;
      if ("gap" in taken) {
        this.logger.error(taken.gap, "an orchestrator frame is missing; dropping the link to resume");
        this.ws.terminate();
        return;
      }
      ({ body: buffer, sequenced } = taken);
    }
    const decoded = codec.decode(buffer.toString("utf8"));
    if (!decoded.ok) {
      this.logger.warn({ code: decoded.code, message: decoded.message }, "refused a frame from the orchestrator");
      this.send({ type: "protocol_error", requestId: decoded.requestId, code: decoded.code, message: decoded.message });
      return;
    }
    const msg = decoded.value;
    switch (msg.type) {
      case "ack":
        if (!this.replay?.ack(msg.seq)) this.logger.warn({ seq: msg.seq }, "ack for a frame never sent");
        return;
      case "resumed":
        this.onResumed(msg);
        return;
      case "welcome":
        if (msg.resumeToken && this.state === "connecting") {
          this.workerId = msg.workerId;
          this.resumeToken = msg.resumeToken;
          this.replay = new ReplayBuffer<Buffer>();
          this.inbound = new InboundSequence((seq) => this.sendAck(seq));
        }
        if (this.state === "connecting") this.state = "open";
        this.handlers.onMessage(msg);
        return;
      case "join_refused":
        if (this.state === "reconnecting") {
          this.giveUp(`resume refused: ${msg.message} (${msg.code})`);
          return;
        }
        this.handlers.onMessage(msg);
        return;
      default:
        if (this.inbound && !sequenced) {
          this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `'${msg.type}' must carry a seq on a resumable link.` });
          return;
        }
        this.handlers.onMessage(msg);
    }
  }

  private sendAck(seq: number): boolean {
    if (this.state !== "open" || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(`{"type":"ack","seq":${seq}}`);
    return true;
  }

  private armHeartbeat(): void {
    if (this.heartbeatIntervalMs <= 0 || this.state === "closed") return;
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = setTimeout(() => this.onHeartbeatLost(), this.heartbeatIntervalMs * HEARTBEAT_MISSES);
  }

  private onHeartbeatLost(): void {
    if (!this.replay) {
      this.handlers.onHeartbeatLost();
      return;
    }
    // Resumable: the socket is presumed dead (half-open); dropping it starts the reconnect.
    this.logger.warn({ silentMs: this.heartbeatIntervalMs * HEARTBEAT_MISSES }, "no ping from the orchestrator; dropping the socket");
    this.ws.terminate();
  }

  /** Bytes that should hold kernel output back: the socket's send buffer, and the replay buffer past its bound. */
  private backedUp(high: boolean): boolean {
    const socketBytes = this.state === "open" ? this.ws.bufferedAmount : 0;
    const replayBytes = this.replay?.bytes ?? 0;
    return high ? socketBytes >= SEND_HIGH_WATER_BYTES || replayBytes >= REPLAY_MAX_BYTES : socketBytes > SEND_LOW_WATER_BYTES || replayBytes > REPLAY_LOW_WATER_BYTES;
  }

  private checkBackpressure(): void {
    if (this.drainTimer || !this.backedUp(true)) return;
    this.handlers.onBackpressure(true);
    // ws has no drain event of its own; polling a few ms is cheap and only happens while backed up.
    this.drainTimer = setInterval(() => {
      if (this.state !== "closed" && this.backedUp(false)) return;
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
      this.handlers.onBackpressure(false);
    }, DRAIN_POLL_MS);
  }

  private stopHeartbeat(): void {
    clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }

  private stopTimers(): void {
    this.stopHeartbeat();
    if (this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }
}
