import { afterEach, describe, expect, it, vi } from "vitest";
import { MessageCodec } from "./codec.js";
import { ErrorCodes } from "./errors.js";
import { ResumableLink, type LinkTransport } from "./resumable-link.js";
import { Type } from "@sinclair/typebox";

/** A small protocol for the pair: numbered notes, acks, and the resume handshake the owners speak. */
const Message = Type.Union([
  Type.Object({ type: Type.Literal("note"), n: Type.Integer() }),
  Type.Object({ type: Type.Literal("ack"), seq: Type.Integer({ minimum: 0 }) }),
  Type.Object({ type: Type.Literal("hello") }),
]);
const codec = new MessageCodec(Message);
type Note = { type: "note"; n: number };

const decoder = new TextDecoder();

/** One end: a link over an in-memory socket to the peer, recording what it delivers. */
class End {
  readonly link: ResumableLink<{ type: string }>;
  readonly delivered: number[] = [];
  readonly refused: string[] = [];
  peer!: End;
  up = true;
  terminated = 0;

  constructor(sequenced = true) {
    this.link = new ResumableLink(this.transport(), { decode: (text) => codec.decode(text), unsequenced: new Set(["ack", "hello"]), sequenced, ackDelayMs: 10 });
  }

  /** A socket to the peer: frames arrive synchronously while it is up; a dead one drops them. */
  transport(): LinkTransport {
    const socket = { alive: true };
    return {
      sendText: (frame) => {
        if (socket.alive && this.up) this.peer.receive(Uint8Array.from(frame));
      },
      terminate: () => {
        socket.alive = false;
        this.terminated += 1;
      },
    };
  }

  receive(frame: Uint8Array): void {
    const received = this.link.receive(frame);
    if (received.kind === "message" && received.message.type === "note") this.delivered.push((received.message as Note).n);
    if (received.kind === "refused") this.refused.push(received.code);
  }

  note(n: number): boolean {
    return this.link.send(JSON.stringify({ type: "note", n }));
  }
}

function pair(sequenced = true): [End, End] {
  const a = new End(sequenced);
  const b = new End(sequenced);
  a.peer = b;
  b.peer = a;
  return [a, b];
}

/** Both ends lose the socket; each holds its link. */
function drop(a: End, b: End, holdMs = 1000): { expiredA: () => boolean; expiredB: () => boolean } {
  a.up = false;
  b.up = false;
  let expiredA = false;
  let expiredB = false;
  expect(a.link.hold(holdMs, () => (expiredA = true))).toBe(true);
  expect(b.link.hold(holdMs, () => (expiredB = true))).toBe(true);
  return { expiredA: () => expiredA, expiredB: () => expiredB };
}

/** The resume handshake over a new socket: each side resends what the other has not delivered. */
function resume(a: End, b: End): void {
  a.up = true;
  b.up = true;
  const forB = a.link.framesToResend(b.link.lastDelivered);
  const forA = b.link.framesToResend(a.link.lastDelivered);
  expect(forB).toBeDefined();
  expect(forA).toBeDefined();
  a.link.rebind(a.transport());
  b.link.rebind(b.transport());
  a.link.resend(forB!);
  b.link.resend(forA!);
}

describe("the resumable link over an in-memory pair", () => {
  afterEach(() => vi.useRealTimers());

  it("delivers every message once and in order, and acks release what the sender keeps", () => {
    vi.useFakeTimers();
    const [a, b] = pair();
    for (let n = 1; n <= 5; n++) expect(a.note(n)).toBe(true);
    expect(b.delivered).toEqual([1, 2, 3, 4, 5]);
    expect(a.link.unacknowledgedBytes).toBeGreaterThan(0);
    vi.advanceTimersByTime(10);
    expect(a.link.unacknowledgedBytes).toBe(0);
    expect(b.link.lastDelivered).toBe(5);
  });

  it("queues what is sent while held and, after a resume, each side receives exactly what it missed", () => {
    vi.useFakeTimers();
    const [a, b] = pair();
    a.note(1);
    b.note(100);
    vi.advanceTimersByTime(10); // acks for 1 and 100
    a.note(2); // sent, never acked: the drop takes the ack with it
    const { expiredA, expiredB } = drop(a, b);
    expect(a.link.state).toBe("held");
    expect(a.note(3)).toBe(true); // queued while held
    expect(b.note(101)).toBe(true);
    expect(b.delivered).toEqual([1, 2]);
    resume(a, b);
    expect(a.link.state).toBe("connected");
    expect(b.delivered).toEqual([1, 2, 3]);
    expect(a.delivered).toEqual([100, 101]);
    a.note(4);
    expect(b.delivered).toEqual([1, 2, 3, 4]);
    vi.advanceTimersByTime(5000);
    expect(expiredA() || expiredB()).toBe(false);
  });

  it("survives two drops in a row, and a retransmitted frame the peer already had is dropped as a duplicate", () => {
    vi.useFakeTimers();
    const [a, b] = pair();
    a.note(1);
    drop(a, b);
    a.note(2);
    resume(a, b);
    a.note(3);
    drop(a, b);
    a.note(4);
    resume(a, b);
    // The peer resent 1..4 at most once each: the receiver delivered each once.
    expect(b.delivered).toEqual([1, 2, 3, 4]);
    const frame = new TextEncoder().encode('{"seq":1,"type":"note","n":1}');
    b.receive(frame);
    expect(b.delivered).toEqual([1, 2, 3, 4]);
  });

  it("closes a held link when nobody resumes it within the hold, and sends nothing afterwards", () => {
    vi.useFakeTimers();
    const [a, b] = pair();
    const { expiredA } = drop(a, b, 300);
    vi.advanceTimersByTime(299);
    expect(a.link.state).toBe("held");
    vi.advanceTimersByTime(1);
    expect(expiredA()).toBe(true);
    expect(a.link.state).toBe("closed");
    expect(a.note(9)).toBe(false);
    expect(a.link.framesToResend(0)).toBeUndefined();
  });

  it("drops the socket on a skipped seq, so the peers resume", () => {
    const [a, b] = pair();
    b.receive(new TextEncoder().encode('{"seq":2,"type":"note","n":2}'));
    expect(b.delivered).toEqual([]);
    expect(b.terminated).toBe(1);
    void a;
  });

  it("refuses an unsequenced message on a sequenced link and an ack for a frame never sent, and keeps working", () => {
    const [a, b] = pair();
    b.receive(new TextEncoder().encode('{"type":"note","n":7}'));
    b.receive(new TextEncoder().encode('{"type":"ack","seq":99}'));
    b.receive(new TextEncoder().encode("{not json"));
    expect(b.refused).toEqual([ErrorCodes.PROTOCOL_INVALID_MESSAGE, ErrorCodes.PROTOCOL_INVALID_MESSAGE, ErrorCodes.PROTOCOL_MALFORMED_JSON]);
    // Control frames pass without a seq.
    b.receive(new TextEncoder().encode('{"type":"hello"}'));
    expect(b.refused).toHaveLength(3);
    a.note(1);
    expect(b.delivered).toEqual([1]);
  });

  it("refuses a resume that claims less than it acknowledged or more than was sent", () => {
    vi.useFakeTimers();
    const [a, b] = pair();
    a.note(1);
    a.note(2);
    vi.advanceTimersByTime(10);
    drop(a, b);
    expect(a.link.framesToResend(1)).toBeUndefined(); // b acknowledged 2 already
    expect(a.link.framesToResend(3)).toBeUndefined(); // never sent
    expect(a.link.framesToResend(2)).toEqual([]);
  });

  it("starts unsequenced and numbers frames only once sequencing starts (the worker's welcome)", () => {
    const [a, b] = pair(false);
    const seen: string[] = [];
    a.peer = { receive: (frame: Uint8Array) => seen.push(decoder.decode(frame)) } as unknown as End;
    a.note(1);
    a.link.startSequencing();
    a.note(2);
    expect(seen).toEqual(['{"type":"note","n":1}', '{"seq":1,"type":"note","n":2}']);
    // An unsequenced link has nothing to resume: a drop closes it.
    expect(b.link.hold(1000, () => undefined)).toBe(false);
    expect(b.link.state).toBe("closed");
  });
});
