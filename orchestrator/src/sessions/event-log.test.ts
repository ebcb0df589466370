import { afterEach, describe, expect, it, vi } from "vitest";
import { SessionEventLog } from "./event-log.js";

const decode = (frame: Uint8Array): unknown => JSON.parse(new TextDecoder().decode(frame));
const raw = (message: object): Uint8Array => new TextEncoder().encode(JSON.stringify(message));

describe("the session event log", () => {
  afterEach(() => vi.useRealTimers());

  it("numbers every message 1, 2, 3... with seq spliced first into the worker's own JSON", () => {
    const log = new SessionEventLog({ maxBytes: 1 << 20, retentionMs: 60_000 });
    const first = log.append({ type: "stream", requestId: "r" }, raw({ type: "stream", requestId: "r", name: "stdout", text: "hi {\"seq\":9}" }));
    const second = log.append({ type: "session_status", requestId: null, status: "ready", phase: "ready" } as { type: string; requestId: null }, undefined);
    expect([first.seq, second.seq, log.lastSeq]).toEqual([1, 2, 2]);
    expect(new TextDecoder().decode(first.frame).startsWith('{"seq":1,"type":"stream"')).toBe(true);
    expect(decode(first.frame)).toEqual({ seq: 1, type: "stream", requestId: "r", name: "stdout", text: 'hi {"seq":9}' });
    expect(decode(second.frame)).toMatchObject({ seq: 2, type: "session_status" });
  });

  it("replays exactly what came after a seq, and nothing when the client is up to date", () => {
    const log = new SessionEventLog({ maxBytes: 1 << 20, retentionMs: 60_000 });
    for (let i = 0; i < 5; i++) log.append({ type: "stream", requestId: "r" }, raw({ type: "stream", requestId: "r", text: String(i) }));
    const replay = log.after(2);
    expect(replay.ok && replay.events.map((e) => e.seq)).toEqual([3, 4, 5]);
    const none = log.after(5);
    expect(none.ok && none.events).toEqual([]);
    expect(log.after(0).ok).toBe(true);
  });

  it("keeps at most maxBytes, dropping the oldest, and says so to a client asking for what is gone", () => {
    const log = new SessionEventLog({ maxBytes: 1000, retentionMs: 60_000 });
    for (let i = 0; i < 100; i++) log.append({ type: "stream", requestId: "r" }, raw({ type: "stream", requestId: "r", text: "x".repeat(80) }));
    expect(log.retainedBytes).toBeLessThanOrEqual(1000);
    expect(log.oldestSeq).toBeGreaterThan(1);
    expect(log.after(0)).toEqual({ ok: false, oldestSeq: log.oldestSeq });
    const kept = log.after(log.oldestSeq - 1);
    expect(kept.ok && kept.events[0]?.seq).toBe(log.oldestSeq);
    expect(kept.ok && kept.events.at(-1)?.seq).toBe(100);
  });

  it("forgets an execution's messages retentionMs after its done, but never a running one's", () => {
    vi.useFakeTimers({ now: 0 });
    const log = new SessionEventLog({ maxBytes: 1 << 20, retentionMs: 1000 });
    log.append({ type: "stream", requestId: "a" }, raw({ type: "stream", requestId: "a" }));
    log.append({ type: "done", requestId: "a" }, raw({ type: "done", requestId: "a" }));
    log.append({ type: "stream", requestId: "b" }, raw({ type: "stream", requestId: "b" }));
    vi.advanceTimersByTime(1001);
    const replay = log.after(2);
    expect(replay.ok && replay.events.map((e) => e.requestId)).toEqual(["b"]);
    expect(log.after(0).ok).toBe(false);
    vi.advanceTimersByTime(60_000);
    expect(log.ofExecution("b").map((e) => e.seq)).toEqual([3]);
  });
});
