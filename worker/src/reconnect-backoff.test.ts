import { describe, expect, it } from "vitest";
import { RECONNECT_MAX_DELAY_MS, reconnectDelayMs } from "./reconnect-backoff.js";

describe("reconnect backoff", () => {
  it("doubles from 100 ms up to 2 s, each delay between half and all of its ceiling", () => {
    const ceilings = [100, 200, 400, 800, 1600, 2000, 2000];
    ceilings.forEach((ceiling, attempt) => {
      expect(reconnectDelayMs(attempt, () => 0)).toBe(ceiling / 2);
      expect(reconnectDelayMs(attempt, () => 1)).toBe(ceiling);
    });
    expect(reconnectDelayMs(1000, () => 1)).toBe(RECONNECT_MAX_DELAY_MS);
  });
});
