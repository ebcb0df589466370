import WebSocket from "ws";
import type { Logger } from "pino";
import {
  ErrorCodes,
  LivenessWatch,
  MAX_LINK_FRAME_BYTES,
  MessageCodec,
  OrchestratorMessage,
  PROTOCOL_VERSION,
  ResumableLink,
  WorkerCloseCodes,
  decodeBinaryFrame,
  type LinkTransport,
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

/** Channel lifecycle: `connecting` (first dial, before welcome), `open`, `reconnecting` (resumable link held), `closed`. */
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
/**
 * A dropped worker redials for this many heartbeat intervals: the
 * orchestrator holds its state for 3 from when it saw the drop, and one more
 * covers the two ends noticing at different times. Past the hold a resume is
 * refused anyway, so trying longer gains nothing.
 */
const RECONNECT_WINDOW_INTERVALS = 4;
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** Close codes by which the orchestrator (or we) ended the channel on purpose: never reconnect after these. */
const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set(Object.values(WorkerCloseCodes));
/** What the orchestrator sends without a seq once sequencing is on. */
const UNSEQUENCED_FROM_ORCHESTRATOR: ReadonlySet<string> = new Set(["ack", "resumed", "welcome", "join_refused"]);

const codec = new MessageCodec(OrchestratorMessage);

/**
 * The websocket the worker dials to the orchestrator. The link rules
 * (sequencing, acks, what to resend after a resume) are the shared
 * ResumableLink's; this class owns the sockets: dialing, redialing with
 * backoff after a drop until the orchestrator answers `resumed` or refuses,
 * the heartbeat watchdog, and send-side backpressure.
 */
export class OrchestratorChannel {
  private ws!: WebSocket;
  private state: ChannelState = "connecting";
  private readonly link: ResumableLink<OrchestratorMessage>;
  private liveness: LivenessWatch | undefined;
  private heartbeatIntervalMs = 0;
  private drainTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private workerId: string | undefined;
  private resumeToken: string | undefined;
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
    this.link = new ResumableLink(transportOf(this.ws), { decode: (text) => codec.decode(text), unsequenced: UNSEQUENCED_FROM_ORCHESTRATOR });
  }

  get isOpen(): boolean {
    return (this.state === "connecting" || this.state === "open") && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a message. On a resumable link it is sequenced and kept until
   * acked, so one sent while reconnecting goes out once the link resumes;
   * otherwise a message sent while the socket is closed is dropped.
   */
  send(msg: WorkerMessage): void {
    let json = JSON.stringify(msg);
    // A frame over the agreed limit would be refused and, on a resumable link, retransmitted forever.
    if (json.length > MAX_LINK_FRAME_BYTES / 4 && Buffer.byteLength(json) > MAX_LINK_FRAME_BYTES) {
      this.logger.error({ type: msg.type, bytes: Buffer.byteLength(json) }, "a message over the link's frame limit was not sent");
      const requestId = "requestId" in msg && typeof msg.requestId === "string" ? msg.requestId : null;
      json = JSON.stringify({ type: "protocol_error", requestId, code: ErrorCodes.OUTPUT_TOO_LARGE, message: `A '${msg.type}' message over ${MAX_LINK_FRAME_BYTES} bytes was not sent.` } satisfies WorkerMessage);
    }
    if (this.state === "closed" || (!this.link.sequenced && !this.isOpen) || !this.link.send(json)) {
      this.logger.debug({ type: msg.type }, "dropping a message: the orchestrator channel is closed");
      return;
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
    this.liveness?.stop();
    this.liveness = new LivenessWatch({ intervalMs, onSilent: () => this.onHeartbeatLost() });
  }

  close(code: number, reason: string): void {
    this.closing = true;
    this.stopTimers();
    clearTimeout(this.reconnectTimer);
    this.link.close();
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
      if (ws === this.ws) this.liveness?.heard();
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
    this.liveness?.stop();
    if (this.state === "closed") return;
    const resumable = this.link.sequenced && this.state !== "connecting";
    if (this.closing || !resumable || FINAL_CLOSE_CODES.has(code)) {
      this.state = "closed";
      this.stopTimers();
      this.link.close();
      this.handlers.onClose(code, reason);
      return;
    }
    if (this.state === "open") {
      this.state = "reconnecting";
      this.droppedAt = Date.now();
      this.reconnectAttempt = 0;
      const windowMs = RECONNECT_WINDOW_INTERVALS * this.heartbeatIntervalMs;
      this.reconnectDeadline = this.droppedAt + windowMs;
      this.link.hold(windowMs, () => this.giveUp(`could not resume the link within ${windowMs} ms`));
      this.logger.warn({ code, reason, deadlineMs: windowMs }, "the orchestrator link dropped; reconnecting");
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
    if (!this.workerId || !this.resumeToken) return;
    this.logger.debug({ attempt: this.reconnectAttempt }, "reconnected; resuming");
    // On the new socket, before the link is rebound to it: the handshake is not part of the sequence.
    this.ws.send(
      JSON.stringify({
        type: "resume",
        protocolVersion: PROTOCOL_VERSION,
        workerId: this.workerId,
        resumeToken: this.resumeToken,
        lastSeqReceived: this.link.lastDelivered,
      } satisfies WorkerMessage),
    );
    // An orchestrator that accepts the socket and then says nothing is treated like a silent one.
    this.liveness?.restart();
  }

  private onResumed(msg: Resumed): void {
    if (this.state !== "reconnecting") return;
    // Without a new one (a cluster keeps the token for the worker's life), the current one stays.
    this.resumeToken = msg.resumeToken ?? this.resumeToken;
    const frames = this.link.framesToResend(msg.lastSeqReceived);
    if (!frames) {
      this.giveUp(`the orchestrator delivered up to ${msg.lastSeqReceived}, which does not match what was sent`);
      return;
    }
    this.link.rebind(transportOf(this.ws));
    this.state = "open";
    this.link.resend(frames);
    const gapMs = Date.now() - this.droppedAt;
    this.logger.info({ gapMs, attempts: this.reconnectAttempt, retransmitted: frames.length }, "the orchestrator link resumed");
    this.liveness?.restart();
    this.handlers.onLinkUp(gapMs);
    this.checkBackpressure();
  }

  private giveUp(reason: string): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.stopTimers();
    clearTimeout(this.reconnectTimer);
    this.link.close();
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    this.logger.error({ reason }, "giving up on the orchestrator link");
    this.handlers.onResumeFailed(reason);
  }

  private receive(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      const frame = decodeBinaryFrame(buffer);
      if (frame) this.handlers.onBinary(frame.streamId, frame.payload);
      else this.send({ type: "protocol_error", requestId: null, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: "A binary frame shorter than its 4-byte stream id." });
      return;
    }
    const received = this.link.receive(buffer);
    if (received.kind === "handled") return;
    if (received.kind === "refused") {
      this.logger.warn({ code: received.code, message: received.message }, "refused a frame from the orchestrator");
      this.send({ type: "protocol_error", requestId: received.requestId, code: received.code, message: received.message });
      return;
    }
    const msg = received.message;
    switch (msg.type) {
      case "ack":
        return; // the link settles acks
      case "resumed":
        this.onResumed(msg);
        return;
      case "welcome":
        if (this.state === "connecting") {
          if (msg.resumeToken) {
            this.workerId = msg.workerId;
            this.resumeToken = msg.resumeToken;
            this.link.startSequencing();
          }
          this.state = "open";
        }
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
        this.handlers.onMessage(msg);
    }
  }

  private onHeartbeatLost(): void {
    if (!this.link.sequenced) {
      this.handlers.onHeartbeatLost();
      return;
    }
    // Resumable: the socket is presumed dead (half-open); dropping it starts the reconnect.
    this.logger.warn({ silentMs: this.heartbeatIntervalMs * 3 }, "no ping from the orchestrator; dropping the socket");
    this.ws.terminate();
  }

  /** Bytes that should hold kernel output back: the socket's send buffer, and the replay buffer past its bound. */
  private backedUp(high: boolean): boolean {
    const socketBytes = this.state === "open" ? this.ws.bufferedAmount : 0;
    const replayBytes = this.link.unacknowledgedBytes;
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

  private stopTimers(): void {
    this.liveness?.stop();
    if (this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }
}

function transportOf(ws: WebSocket): LinkTransport {
  return {
    sendText: (frame) => ws.send(frame, { binary: false }),
    terminate: () => ws.terminate(),
  };
}
