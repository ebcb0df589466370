import type { DecodeResult } from "./codec.js";
import { ErrorCodes, type ErrorCode } from "./errors.js";
import { InboundSequence, ReplayBuffer, encodeSequenced } from "./reliable-link.js";

/**
 * One end of the worker link (orchestrator <-> worker), without I/O: the
 * owner hands it a transport per socket and tells it when that socket drops.
 * Both ends use it, so the rules of protocol 1.1 live in one place:
 *
 * - once sequencing starts (after welcome), every message frame is numbered,
 *   kept until the peer acknowledges it, and retransmitted after a resume;
 * - received frames are delivered once and in order, acknowledged
 *   cumulatively; a skipped seq breaks the link (the transport is dropped and
 *   the peers resume over a new one);
 * - `connected`: a socket is up; `held`: the socket dropped and the link
 *   waits (at most `holdMs`) for a resume, queueing what is sent meanwhile;
 *   `closed`: gone for good.
 *
 * The resume credential (issued by the orchestrator, presented by the worker)
 * is the owners' business: this class only computes what to retransmit.
 */
export type LinkState = "connected" | "held" | "closed";

/** What the link needs of one socket. */
export interface LinkTransport {
  /** Sends one text frame (UTF-8 bytes of a JSON message). */
  sendText(frame: Uint8Array): void;
  /** Drops the socket at once; its owner reports the drop through `hold()` or `close()`. */
  terminate(): void;
}

export type TimerHandle = ReturnType<typeof setTimeout>;

/** Timers, injectable so tests can drive time. */
export interface LinkTimers {
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const realTimers: LinkTimers = {
  setTimeout: (callback, ms) => {
    const handle = setTimeout(callback, ms);
    // A hold or a heartbeat must never keep a closing process alive.
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle),
};

export interface ResumableLinkOptions<In> {
  /** Parses one received message (its seq already stripped). */
  decode(text: string): DecodeResult<In>;
  /** Types the peer may send without a seq once sequencing is on (link control, handshake). */
  unsequenced: ReadonlySet<string>;
  /** Start numbering at once (the orchestrator, which knows from hello); the worker starts at welcome. */
  sequenced?: boolean;
  timers?: LinkTimers;
  ackDelayMs?: number;
  ackEveryFrames?: number;
}

/** What one received frame comes to. */
export type Received<In> =
  /** A message for the owner; `raw` is its JSON without the seq (relay it as is). */
  | { kind: "message"; message: In; raw: Uint8Array }
  /** A frame the owner should answer with protocol_error; the link keeps working. */
  | { kind: "refused"; code: ErrorCode; message: string; requestId: string | null }
  /** Nothing for the owner: a duplicate, an ack, or a gap (the transport was dropped). */
  | { kind: "handled" };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ResumableLink<In extends { type: string }> {
  private linkState: LinkState = "connected";
  private transport: LinkTransport;
  private outbound: ReplayBuffer<Uint8Array> | undefined;
  private inbound: InboundSequence | undefined;
  private readonly timers: LinkTimers;
  private holdTimer: TimerHandle | undefined;
  private heldAt = 0;

  constructor(
    transport: LinkTransport,
    private readonly options: ResumableLinkOptions<In>,
  ) {
    this.transport = transport;
    this.timers = options.timers ?? realTimers;
    if (options.sequenced) this.startSequencing();
  }

  get state(): LinkState {
    return this.linkState;
  }

  /** Frames are numbered and kept for a resume (protocol 1.1 after welcome). */
  get sequenced(): boolean {
    return this.outbound !== undefined;
  }

  /** Bytes sent and not yet acknowledged (what a resume would retransmit). */
  get unacknowledgedBytes(): number {
    return this.outbound?.bytes ?? 0;
  }

  /** Last seq delivered from the peer (0 before the first): what a resume handshake reports. */
  get lastDelivered(): number {
    return this.inbound?.lastDelivered ?? 0;
  }

  /**
   * What a resume handshake tells the peer it may forget: what was delivered,
   * or with deferred acks only what the owner confirmed (persisted).
   */
  get handshakeSeq(): number {
    return this.inbound?.ackable ?? 0;
  }

  /**
   * From now on, acknowledge only what `confirm()` releases: in a cluster the
   * peer may drop a frame only once its effects are persisted, or a replica
   * taking over would never see them.
   */
  deferAcks(): void {
    this.inbound?.deferAcks();
  }

  /** Frames up to `seq` are persisted: they may be acknowledged. */
  confirm(seq: number): void {
    this.inbound?.confirm(seq);
  }

  /**
   * Continues a link another process ran (a takeover): numbering outbound
   * frames after `sentSeq` (what the peer says it received) and expecting
   * inbound frames after `deliveredSeq` (what the previous owner persisted).
   * Only before anything was sent or received on this link.
   */
  continueAfter(sentSeq: number, deliveredSeq: number): void {
    this.startSequencing();
    this.outbound?.startAfter(sentSeq);
    this.inbound?.startAfter(deliveredSeq);
  }

  /** When the link was last held (epoch ms), for logs. */
  get heldSince(): number {
    return this.heldAt;
  }

  /** Turns sequencing on (idempotent): from now on both directions are numbered. */
  startSequencing(): void {
    if (this.outbound) return;
    this.outbound = new ReplayBuffer<Uint8Array>();
    this.inbound = new InboundSequence((seq) => this.sendControl(`{"type":"ack","seq":${seq}}`), this.options.ackDelayMs, this.options.ackEveryFrames);
  }

  /**
   * Sends a message frame; false once the link is closed. Sequenced, it is
   * kept until acknowledged, so one sent while held goes out on the resume;
   * unsequenced, a frame sent while the socket is down is dropped (false).
   */
  send(json: string): boolean {
    if (this.linkState === "closed") return false;
    if (!this.outbound) {
      if (this.linkState !== "connected") return false;
      this.transport.sendText(encoder.encode(json));
      return true;
    }
    const frame = this.outbound.append((seq) => encoder.encode(encodeSequenced(seq, json)));
    if (this.linkState === "connected") this.transport.sendText(frame);
    return true;
  }

  /** Handshake and link control (welcome, resume, resumed, ack): never numbered, dropped unless connected. */
  sendControl(json: string): boolean {
    if (this.linkState !== "connected") return false;
    this.transport.sendText(encoder.encode(json));
    return true;
  }

  /** One received text frame. Mutates `frame` (the seq is stripped in place). */
  receive(frame: Uint8Array): Received<In> {
    let body = frame;
    let wasSequenced = false;
    if (this.inbound) {
      const taken = this.inbound.take(frame);
      if (taken === "duplicate") return { kind: "handled" };
      if ("gap" in taken) {
        // An ordered socket never skips: the link is broken. Drop it so the peers resume.
        this.transport.terminate();
        return { kind: "handled" };
      }
      body = taken.body;
      wasSequenced = taken.sequenced;
    }
    const decoded = this.options.decode(decoder.decode(body));
    if (!decoded.ok) return { kind: "refused", code: decoded.code, message: decoded.message, requestId: decoded.requestId };
    const message = decoded.value;
    if (message.type === "ack") {
      const seq = "seq" in message ? message.seq : undefined;
      if (this.outbound && typeof seq === "number" && this.outbound.ack(seq)) return { kind: "handled" };
      return refused(`ack ${String(seq)} is for a frame never sent.`);
    }
    if (this.inbound && !wasSequenced && !this.options.unsequenced.has(message.type)) {
      return refused(`'${message.type}' must carry a seq on a resumable link.`);
    }
    return { kind: "message", message, raw: body };
  }

  /**
   * The socket dropped unexpectedly. Sequenced, the link is held for
   * `holdMs` (then `onExpired` runs and it is closed); unsequenced, there is
   * nothing to resume and it closes now (returns false).
   */
  hold(holdMs: number, onExpired: () => void): boolean {
    if (this.linkState === "closed") return false;
    if (!this.outbound) {
      this.close();
      return false;
    }
    if (this.linkState === "held") return true;
    this.linkState = "held";
    this.heldAt = Date.now();
    this.holdTimer = this.timers.setTimeout(() => {
      this.holdTimer = undefined;
      if (this.linkState !== "held") return;
      this.close();
      onExpired();
    }, holdMs);
    return true;
  }

  /**
   * The peer resumed and has delivered up to `peerLastSeq`: the frames to
   * retransmit, or undefined when that cannot be honoured (a claim below what
   * it already acknowledged, or above what was sent).
   */
  framesToResend(peerLastSeq: number): Uint8Array[] | undefined {
    if (!this.outbound || this.linkState === "closed") return undefined;
    return this.outbound.ack(peerLastSeq) ? this.outbound.framesAfter(peerLastSeq) : undefined;
  }

  /**
   * Continues over `transport` after a resume handshake. Call it, send the
   * handshake answer (which tells the peer how far we got: that counts as an
   * ack), then `resend()` what `framesToResend` returned. The previous
   * transport, if it still looked up, is dropped.
   */
  rebind(transport: LinkTransport): void {
    if (this.linkState === "closed") return;
    const previous = this.transport;
    this.transport = transport;
    if (this.linkState === "connected" && previous !== transport) previous.terminate();
    this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.linkState = "connected";
    this.inbound?.acknowledgedByHandshake();
  }

  /** Retransmits frames the peer has not delivered (after `rebind`). */
  resend(frames: readonly Uint8Array[]): void {
    if (this.linkState !== "connected") return;
    for (const frame of frames) this.transport.sendText(frame);
  }

  /** Sends a pending ack now (before a clean close, so the peer can release what we got). */
  flushAck(): void {
    this.inbound?.flush();
  }

  /** Gone for good. Idempotent. */
  close(): void {
    if (this.linkState === "closed") return;
    this.linkState = "closed";
    this.timers.clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    this.inbound?.dispose();
  }
}

function refused(message: string): { kind: "refused"; code: ErrorCode; message: string; requestId: null } {
  return { kind: "refused", code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message, requestId: null };
}
