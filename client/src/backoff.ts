import type { ReconnectOptions } from "./config.js";

/**
 * Full-jitter exponential backoff: attempt n waits a random delay in
 * [0, min(maxDelayMs, initialDelayMs * 2^n)], so many clients cut at once do
 * not come back in lockstep, and the first retry is almost immediate.
 */
export function backoffDelayMs(attempt: number, options: Required<ReconnectOptions>, random: () => number = Math.random): number {
  const bound = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * bound);
}
