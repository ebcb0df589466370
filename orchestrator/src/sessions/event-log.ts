import { encodeSequenced } from "@tether/shared";

/** One message a client sees, as sent: its JSON with `"seq":N` as the first member. */
export interface LoggedEvent {
  seq: number;
  /** The execution it belongs to; null for session-wide messages (session_status, kernel status). */
  requestId: string | null;
  frame: Uint8Array;
  /** When it was appended (epoch ms). */
  at: number;
  /** The execution's last message. */
  done: boolean;
}

export interface EventLogLimits {
  /** Bytes of frames kept per session (TETHER_EVENT_LOG_MAX_BYTES); the oldest go first. */
  maxBytes: number;
  /** How long after an execution's done its events are kept (TETHER_EXECUTION_RETENTION_S). */
  retentionMs: number;
}

/** What `after(seq)` finds: the events to replay, or that some are gone. */
export type Replay = { ok: true; events: readonly LoggedEvent[] } | { ok: false; oldestSeq: number };

const encoder = new TextEncoder();
const SEQ_OPEN = encoder.encode('{"seq":');

/**
 * A session's client-visible messages, numbered: `seq` increases by one per
 * message across the session's whole life (executions, restarts, resumes).
 * A client that lost its connection reconnects with `?after=<last seq it
 * saw>` and gets every retained message after it, exactly once, then live
 * ones. Bounded: by bytes, and by time after an execution ended.
 */
export class SessionEventLog {
  /** Released slots before `head` hold undefined, so an evicted frame is garbage at once. */
  private readonly events: (LoggedEvent | undefined)[] = [];
  private head = 0;
  private nextSeq = 1;
  /**
   * The last seq clients may see. Equal to lastSeq, except in a cluster,
   * where an event is shown only once persisted (a replica taking over must
   * never number differently what a client already saw).
   */
  private published = 0;
  private gated = false;
  private bytes = 0;
  /** requestId -> when its done was logged: its events may go after retentionMs. */
  private readonly doneAt = new Map<string, number>();

  constructor(private readonly limits: EventLogLimits) {}

  /** Seq of the last message logged (0 before the first). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Seq of the last message clients may see (hello's lastSeq, the end of a replay). */
  get publishedSeq(): number {
    return this.gated ? this.published : this.lastSeq;
  }

  /** From now on messages are visible only once `publishThrough` says so (a cluster persists them first). */
  gate(): void {
    if (this.gated) return;
    this.gated = true;
    this.published = this.lastSeq;
  }

  /** Clients may see messages up to `seq` (they are persisted). */
  publishThrough(seq: number): void {
    if (seq > this.published) this.published = Math.min(seq, this.lastSeq);
  }

  /**
   * Continues the log another replica kept (its persisted events, oldest
   * first): numbering goes on after the last, and all of it is published.
   * Only on an empty log.
   */
  restore(events: readonly LoggedEvent[], lastSeq: number): void {
    if (this.nextSeq !== 1) throw new Error("restore() on a log that has events");
    this.nextSeq = lastSeq + 1;
    for (const event of events) {
      this.events.push(event);
      this.bytes += event.frame.byteLength;
      if (event.done && event.requestId !== null) this.doneAt.set(event.requestId, event.at);
      this.nextSeq = Math.max(this.nextSeq, event.seq + 1);
    }
    this.published = this.lastSeq;
    this.evict(Date.now());
  }

  /** Seq of the oldest message still retained (lastSeq + 1 when none is). */
  get oldestSeq(): number {
    return this.events[this.head]?.seq ?? this.nextSeq;
  }

  get retainedBytes(): number {
    return this.bytes;
  }

  /**
   * Numbers and keeps one message. `raw` is the worker's JSON of an event
   * (relayed without re-serialising: the seq is spliced in front);
   * otherwise `message` is serialised.
   */
  append(message: { type: string; requestId?: string | null }, raw: Uint8Array | undefined): LoggedEvent {
    const seq = this.nextSeq++;
    const frame = raw ? spliceSeq(seq, raw) : encoder.encode(encodeSequenced(seq, JSON.stringify(message)));
    const requestId = typeof message.requestId === "string" ? message.requestId : null;
    const done = message.type === "done" && requestId !== null;
    const event: LoggedEvent = { seq, requestId, frame, at: Date.now(), done };
    this.events.push(event);
    this.bytes += frame.byteLength;
    if (done && requestId !== null) this.doneAt.set(requestId, event.at);
    this.evict(event.at);
    return event;
  }

  /** Every retained, published message with seq > `seq`, oldest first; or that some of them are gone. */
  after(seq: number): Replay {
    this.evict(Date.now());
    if (seq < this.oldestSeq - 1) return { ok: false, oldestSeq: this.oldestSeq };
    const start = this.head + Math.max(0, seq - this.oldestSeq + 1);
    const end = this.head + Math.max(0, this.publishedSeq - this.oldestSeq + 1);
    return { ok: true, events: this.events.slice(start, Math.max(start, end)).filter((event): event is LoggedEvent => event !== undefined) };
  }

  /** Every retained message of one execution, oldest first. */
  ofExecution(requestId: string): LoggedEvent[] {
    const found: LoggedEvent[] = [];
    for (let i = this.head; i < this.events.length; i++) {
      const event = this.events[i];
      if (event?.requestId === requestId) found.push(event);
    }
    return found;
  }

  /**
   * Drops from the front: while over the byte budget, and while the oldest
   * message belongs to an execution done more than retentionMs ago (or is a
   * session-wide message that old). The log is ordered, so eviction only
   * ever takes the oldest.
   */
  private evict(now: number): void {
    while (this.head < this.events.length) {
      const oldest = this.events[this.head];
      if (!oldest) break;
      const overBudget = this.bytes > this.limits.maxBytes;
      const ended = oldest.requestId === null ? oldest.at : this.doneAt.get(oldest.requestId);
      const expired = ended !== undefined && now - ended > this.limits.retentionMs;
      if (!overBudget && !expired) break;
      this.bytes -= oldest.frame.byteLength;
      this.events[this.head] = undefined;
      this.head += 1;
      if (oldest.done && oldest.requestId !== null) this.doneAt.delete(oldest.requestId);
    }
    // Compact now and then rather than shifting per event.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** `{"seq":N,` + the rest of `raw` (a JSON object): one copy, no parse. */
function spliceSeq(seq: number, raw: Uint8Array): Uint8Array {
  const digits = encoder.encode(`${seq},`);
  const frame = new Uint8Array(SEQ_OPEN.byteLength + digits.byteLength + raw.byteLength - 1);
  frame.set(SEQ_OPEN, 0);
  frame.set(digits, SEQ_OPEN.byteLength);
  frame.set(raw.subarray(1), SEQ_OPEN.byteLength + digits.byteLength);
  return frame;
}
