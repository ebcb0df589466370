/**
 * The pieces both ends use to make the worker link survive a reconnect
 * (protocol 1.1, capability `resume`): sequenced frames, a replay buffer of
 * what the peer has not acknowledged, and an inbound sequence that drops
 * duplicates and batches acknowledgements. No I/O: the channel owns sockets.
 *
 * Wire form of a sequenced frame: the message's JSON with `"seq":N` as its
 * first member, e.g. `{"seq":7,"type":"stream",...}`. Putting it first lets a
 * receiver read and strip it without parsing the rest, and relay the message
 * bytes on unchanged.
 */

/** Every sequenced frame starts with these bytes. */
export const SEQ_PREFIX = '{"seq":';
const PREFIX_CODES = Array.from(SEQ_PREFIX, (char) => char.charCodeAt(0));
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const MAX_SEQ_DIGITS = 15;

/** A receiver acks at least this often while frames arrive (cheap: one small frame per interval). */
export const ACK_DELAY_MS = 50;
/** ...and at once after this many unacknowledged frames. */
export const ACK_EVERY_FRAMES = 1000;

/** `json` must be a serialised object with at least one member (every message has `type`). */
export function encodeSequenced(seq: number, json: string): string {
  return `${SEQ_PREFIX}${seq},${json.slice(1)}`;
}

/**
 * Reads the `seq` of a sequenced frame and returns the message without it.
 * Zero-copy: the returned body is a view of `frame`, whose byte before the
 * body is overwritten with `{` (the frame is not usable afterwards). Undefined
 * when the frame is not sequenced.
 */
export function splitSequenced(frame: Uint8Array): { seq: number; body: Uint8Array } | undefined {
  const prefixLength = PREFIX_CODES.length;
  if (frame.byteLength <= prefixLength + 1) return undefined;
  for (let i = 0; i < prefixLength; i++) if (frame[i] !== PREFIX_CODES[i]) return undefined;
  let seq = 0;
  let index = prefixLength;
  for (; index < frame.byteLength && index - prefixLength <= MAX_SEQ_DIGITS; index++) {
    const byte = frame[index]!;
    if (byte === COMMA) break;
    if (byte < 0x30 || byte > 0x39) return undefined;
    seq = seq * 10 + (byte - 0x30);
  }
  if (index === prefixLength || frame[index] !== COMMA || seq < 1) return undefined;
  frame[index] = OPEN_BRACE;
  return { seq, body: frame.subarray(index) };
}

/**
 * Sequenced frames sent and not yet acknowledged, oldest first, with their
 * total size so the sender can stop producing while it is too large.
 */
export class ReplayBuffer<F extends { byteLength: number }> {
  /** Released slots before `head` hold undefined, so an acked frame is garbage at once, not at the next compaction. */
  private frames: (F | undefined)[] = [];
  private head = 0;
  /** Seq of frames[head]. */
  private firstSeq = 1;
  private nextSeq = 1;
  private totalBytes = 0;

  /** Numbers from `seq + 1` on: the peer delivered up to `seq` from another process (a takeover). Only before the first append. */
  startAfter(seq: number): void {
    if (this.nextSeq !== 1) throw new Error("startAfter() after frames were appended");
    this.firstSeq = seq + 1;
    this.nextSeq = seq + 1;
  }

  /** Numbers the next frame, stores what `build` makes of it, and returns it. */
  append(build: (seq: number) => F): F {
    const frame = build(this.nextSeq++);
    this.frames.push(frame);
    this.totalBytes += frame.byteLength;
    return frame;
  }

  /** Last seq handed out (0 before the first frame). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Frames held. */
  get length(): number {
    return this.frames.length - this.head;
  }

  /**
   * The peer delivered everything up to `seq`: forget those frames. A stale
   * ack (older than what was already released) is harmless; false for an ack
   * of a seq never sent, which only a broken peer sends.
   */
  ack(seq: number): boolean {
    if (seq > this.lastSeq) return false;
    while (this.firstSeq <= seq && this.head < this.frames.length) {
      this.totalBytes -= this.frames[this.head]!.byteLength;
      this.frames[this.head] = undefined;
      this.head++;
      this.firstSeq++;
    }
    // Compact now and then rather than shifting per ack.
    if (this.head > 1024 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /**
   * Frames after `seq`, oldest first: what to retransmit to a peer that
   * delivered up to `seq`. Undefined when that cannot be honoured (the peer
   * claims less than it already acked, or more than was sent).
   */
  framesAfter(seq: number): F[] | undefined {
    if (seq < this.firstSeq - 1 || seq > this.lastSeq) return undefined;
    return this.frames.slice(this.head + (seq - (this.firstSeq - 1))).filter((frame): frame is F => frame !== undefined);
  }
}

export type InboundVerdict = "deliver" | "duplicate" | "gap";

/**
 * The receiving side of a sequenced direction: delivers each seq once, in
 * order, and acknowledges cumulatively every ACK_DELAY_MS or ACK_EVERY_FRAMES.
 */
export class InboundSequence {
  private delivered = 0;
  private acked = 0;
  /** With deferred acks: the last seq the owner said is safe (persisted); acks never pass it. */
  private confirmed = 0;
  private deferred = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  /** `sendAck` returns false when the link is down (the ack then waits for the resume handshake). */
  constructor(
    private readonly sendAck: (seq: number) => boolean,
    private readonly delayMs: number = ACK_DELAY_MS,
    private readonly everyFrames: number = ACK_EVERY_FRAMES,
  ) {}

  /**
   * From now on, acknowledge only what `confirm()` releases: a frame the
   * peer may drop from its replay buffer must be safe on our side first
   * (persisted, when another process may have to take over).
   */
  deferAcks(): void {
    this.deferred = true;
    this.confirmed = this.acked;
  }

  /** Frames up to `seq` are safe: they may be acknowledged. */
  confirm(seq: number): void {
    const upTo = Math.min(seq, this.delivered);
    if (upTo <= this.confirmed) return;
    this.confirmed = upTo;
    this.schedule();
  }

  /** Starts counting after `seq` (a link taken over from another process, which delivered up to it). */
  startAfter(seq: number): void {
    this.delivered = seq;
    this.acked = seq;
    this.confirmed = seq;
  }

  /** What may be acknowledged: everything delivered, or with deferred acks what was confirmed. */
  get ackable(): number {
    return this.deferred ? this.confirmed : this.delivered;
  }

  /** Last seq delivered (0 before the first). */
  get lastDelivered(): number {
    return this.delivered;
  }

  /**
   * `deliver`: the next frame, hand it on (it counts as delivered now).
   * `duplicate`: already delivered, drop it. `gap`: a frame is missing, which
   * an ordered socket never does: the link is broken.
   */
  accept(seq: number): InboundVerdict {
    if (seq <= this.delivered) {
      this.schedule();
      return "duplicate";
    }
    if (seq !== this.delivered + 1) return "gap";
    this.delivered = seq;
    if (this.ackable - this.acked >= this.everyFrames) this.flush();
    else this.schedule();
    return "deliver";
  }

  /**
   * One received text frame: a sequenced frame is stripped of its seq and
   * accepted (`duplicate` to drop, `gap` to break the link); an unsequenced
   * frame (ack, handshake) passes through with `sequenced: false`.
   */
  take(frame: Uint8Array): { body: Uint8Array; sequenced: boolean } | "duplicate" | { gap: { seq: number; expected: number } } {
    const split = splitSequenced(frame);
    if (!split) return { body: frame, sequenced: false };
    const verdict = this.accept(split.seq);
    if (verdict === "duplicate") return "duplicate";
    if (verdict === "gap") return { gap: { seq: split.seq, expected: this.delivered + 1 } };
    return { body: split.body, sequenced: true };
  }

  /**
   * The resume handshake told the peer `ackable` (how far it may forget):
   * that is an ack. With deferred acks the peer resends what came after; it
   * arrives as duplicates of what was delivered, and is dropped.
   */
  acknowledgedByHandshake(): void {
    this.acked = this.ackable;
  }

  /** Sends the ack now if one is due. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const target = this.ackable;
    if (target > this.acked && this.sendAck(target)) this.acked = target;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), this.delayMs);
  }
}
