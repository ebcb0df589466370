import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MessageCodec } from "./codec.js";
import { InboundSequence, ReplayBuffer, encodeSequenced, splitSequenced } from "./reliable-link.js";
import { WorkerMessage } from "./worker-protocol.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

describe("sequenced frames", () => {
  it("put seq first and strip it again without touching the rest of the message", () => {
    const message = { type: "stream", requestId: "r1", name: "stdout", text: "héllo {\"seq\":9,\n" };
    const frame = encoder.encode(encodeSequenced(123456, JSON.stringify(message)));
    expect(decoder.decode(frame).startsWith('{"seq":123456,"type":"stream"')).toBe(true);
    const split = splitSequenced(frame);
    expect(split?.seq).toBe(123456);
    expect(JSON.parse(decoder.decode(split!.body))).toEqual(message);
  });

  it("keep the seq readable as an ordinary member, so a sequenced frame is valid JSON that validates", () => {
    const text = encodeSequenced(3, JSON.stringify({ type: "ack", seq: 2 }));
    // A duplicate `seq` member: JSON.parse keeps the last one, the message's own.
    expect(JSON.parse(text)).toEqual({ seq: 2, type: "ack" });
    const codec = new MessageCodec(WorkerMessage);
    expect(codec.decode(encodeSequenced(4, JSON.stringify({ type: "status", requestId: null, state: "idle" }))).ok).toBe(true);
  });

  it("tell unsequenced and malformed frames apart from sequenced ones", () => {
    for (const text of ['{"type":"ack","seq":1}', '{"seq":,"type":"x"}', '{"seq":0,"type":"x"}', '{"seq":12a,"type":"x"}', '{"seq":1}', '{"seq":1234567890123456789,"a":1}']) {
      expect(splitSequenced(encoder.encode(text)), text).toBeUndefined();
    }
  });
});

describe("the replay buffer", () => {
  const frame = (seq: number, size = 10) => ({ seq, byteLength: size });

  it("numbers frames from 1, counts their bytes, and releases them on cumulative acks", () => {
    const buffer = new ReplayBuffer<{ seq: number; byteLength: number }>();
    for (let i = 0; i < 5; i++) buffer.append((seq) => frame(seq, 100));
    expect(buffer.lastSeq).toBe(5);
    expect(buffer.bytes).toBe(500);
    expect(buffer.ack(3)).toBe(true);
    expect(buffer.length).toBe(2);
    expect(buffer.bytes).toBe(200);
    expect(buffer.ack(2)).toBe(true); // stale: nothing changes
    expect(buffer.length).toBe(2);
    expect(buffer.ack(6)).toBe(false); // never sent
    expect(buffer.framesAfter(3)?.map((f) => f.seq)).toEqual([4, 5]);
  });

  it("lets an acknowledged frame be garbage-collected at once, not only at the next compaction", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const buffer = new ReplayBuffer<{ seq: number; byteLength: number }>();
    let released: WeakRef<object> | undefined;
    buffer.append((seq) => {
      const first = frame(seq, 1 << 20);
      released = new WeakRef(first);
      return first;
    });
    buffer.append((seq) => frame(seq));
    buffer.ack(1);
    await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets stay alive until the current job ends
    gc();
    expect(released?.deref()).toBeUndefined();
    expect(buffer.framesAfter(1)?.map((f) => f.seq)).toEqual([2]);
  });

  it("hands back exactly the frames a resuming peer has not delivered", () => {
    const buffer = new ReplayBuffer<{ seq: number; byteLength: number }>();
    for (let i = 0; i < 10; i++) buffer.append((seq) => frame(seq));
    buffer.ack(4);
    expect(buffer.framesAfter(4)?.map((f) => f.seq)).toEqual([5, 6, 7, 8, 9, 10]);
    expect(buffer.framesAfter(7)?.map((f) => f.seq)).toEqual([8, 9, 10]);
    expect(buffer.framesAfter(10)).toEqual([]);
    // The peer claims less than it already acked, or more than was sent: cannot be honoured.
    expect(buffer.framesAfter(3)).toBeUndefined();
    expect(buffer.framesAfter(11)).toBeUndefined();
  });

  it("stays correct across compaction with many frames", () => {
    const buffer = new ReplayBuffer<{ seq: number; byteLength: number }>();
    for (let i = 0; i < 10_000; i++) buffer.append((seq) => frame(seq, 1));
    for (let acked = 0; acked < 9_990; acked += 7) buffer.ack(acked);
    buffer.ack(9_990);
    expect(buffer.length).toBe(10);
    expect(buffer.bytes).toBe(10);
    expect(buffer.framesAfter(9_990)?.map((f) => f.seq)).toEqual([9991, 9992, 9993, 9994, 9995, 9996, 9997, 9998, 9999, 10_000]);
    buffer.append((seq) => frame(seq, 1));
    expect(buffer.framesAfter(9_995)?.map((f) => f.seq)).toEqual([9996, 9997, 9998, 9999, 10_000, 10_001]);
  });
});

describe("the inbound sequence", () => {
  afterEach(() => vi.useRealTimers());

  it("delivers each seq once and in order, drops duplicates, and calls a skipped seq a gap", () => {
    const inbound = new InboundSequence(() => true);
    expect([1, 2, 2, 1, 3].map((seq) => inbound.accept(seq))).toEqual(["deliver", "deliver", "duplicate", "duplicate", "deliver"]);
    expect(inbound.accept(5)).toBe("gap");
    expect(inbound.lastDelivered).toBe(3);
    expect(inbound.accept(4)).toBe("deliver");
    inbound.dispose();
  });

  it("acks cumulatively after the delay, or at once after enough frames", () => {
    vi.useFakeTimers();
    const acks: number[] = [];
    const inbound = new InboundSequence((seq) => (acks.push(seq), true), 50, 100);
    for (let seq = 1; seq <= 10; seq++) inbound.accept(seq);
    expect(acks).toEqual([]);
    vi.advanceTimersByTime(50);
    expect(acks).toEqual([10]);
    for (let seq = 11; seq <= 110; seq++) inbound.accept(seq);
    expect(acks).toEqual([10, 110]);
    vi.advanceTimersByTime(500);
    expect(acks).toEqual([10, 110]); // nothing new: no empty acks
    inbound.dispose();
  });

  it("keeps an ack it could not send for later, and counts the resume handshake as one", () => {
    vi.useFakeTimers();
    let linkUp = false;
    const acks: number[] = [];
    const inbound = new InboundSequence((seq) => linkUp && (acks.push(seq), true), 50, 100);
    inbound.accept(1);
    vi.advanceTimersByTime(50);
    expect(acks).toEqual([]);
    linkUp = true;
    inbound.accept(2);
    vi.advanceTimersByTime(50);
    expect(acks).toEqual([2]);
    inbound.accept(3);
    inbound.acknowledgedByHandshake();
    vi.advanceTimersByTime(50);
    expect(acks).toEqual([2]);
    // A retransmitted duplicate still gets an ack, so the sender can release it.
    inbound.accept(3);
    vi.advanceTimersByTime(50);
    expect(acks).toEqual([2]);
    inbound.dispose();
  });
});
