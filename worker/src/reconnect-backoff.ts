/** First redial delay after a drop. */
export const RECONNECT_BASE_DELAY_MS = 100;
/** Longest delay between redials. */
export const RECONNECT_MAX_DELAY_MS = 2000;

/**
 * Delay before redial number `attempt` (0-based): exponential from 100 ms,
 * capped at 2 s, with "equal jitter" (half fixed, half random) so workers cut
 * off together by one orchestrator restart do not redial in lockstep.
 */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(RECONNECT_MAX_DELAY_MS, RECONNECT_BASE_DELAY_MS * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
