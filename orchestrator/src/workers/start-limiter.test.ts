import { afterEach, describe, expect, it, vi } from "vitest";
import { StartLimiter } from "./start-limiter.js";

describe("the start limiter's Retry-After", () => {
  afterEach(() => vi.useRealTimers());

  it("grows with the load: starts that already ran longer than the average stretch the estimate", () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new StartLimiter(2);
    // Quiet history: starts took ~1 s.
    for (let i = 0; i < 10; i++) {
      const slot = limiter.tryAcquire()!;
      vi.advanceTimersByTime(1000);
      slot();
    }
    // Both slots just taken: the history is all there is to go by (~1 s a start).
    limiter.tryAcquire();
    limiter.tryAcquire();
    expect(limiter.retryAfterS()).toBeLessThanOrEqual(2);
    // A burst: both slots busy for 20 s already (2 cores, 30 kernels starting).
    vi.advanceTimersByTime(20_000);
    expect(limiter.tryAcquire()).toBeUndefined();
    // The old estimate said ~1 s; the starts in progress say at least a quarter of 20 s more.
    expect(limiter.retryAfterS()).toBeGreaterThanOrEqual(5);
  });

  it("counts the starts queued ahead of a new one", () => {
    vi.useFakeTimers({ now: 0 });
    const limiter = new StartLimiter(1);
    limiter.tryAcquire();
    const alone = limiter.retryAfterS();
    for (let i = 0; i < 3; i++) void limiter.acquire();
    expect(limiter.retryAfterS()).toBeGreaterThan(alone);
    expect(limiter.retryAfterS()).toBeLessThanOrEqual(60);
  });
});
