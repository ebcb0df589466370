import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SnapshotSweeper } from "./snapshot-sweeper.js";
import type { SnapshotStore, SweepResult } from "./snapshot-store.js";

const logger = pino({ level: "silent" });

function storeWith(sweep: () => Promise<SweepResult>): SnapshotStore {
  return { kind: "local", init: async () => {}, save: vi.fn(), open: vi.fn(), delete: vi.fn(), sweep };
}

describe("the snapshot sweeper", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sweeps at start and then every interval, and keeps going after a failed sweep", async () => {
    vi.useFakeTimers();
    let calls = 0;
    const sweeper = new SnapshotSweeper(
      storeWith(async () => {
        calls += 1;
        if (calls === 2) throw new Error("storage down");
        return { expired: 0, removed: 0 };
      }),
      1000,
      logger,
    );
    sweeper.start();
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toBe(3);
    await sweeper.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(3);
  });

  it("never runs two sweeps at once, and stop() waits for the one in progress", async () => {
    let release!: () => void;
    let calls = 0;
    const sweeper = new SnapshotSweeper(
      storeWith(() => {
        calls += 1;
        return new Promise((resolve) => (release = () => resolve({ expired: 1, removed: 0 })));
      }),
      60_000,
      logger,
    );
    const first = sweeper.sweepNow();
    const second = sweeper.sweepNow();
    expect(second).toBe(first);
    expect(calls).toBe(1);
    let stopped = false;
    const stopping = sweeper.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(stopped).toBe(true);
  });
});
