// Small statistics helpers shared by the scenarios.

/** Nearest-rank percentile of an already-sorted array (p in 0..100). */
export function percentileSorted(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/**
 * Summarise latency samples (ms). `warmup` samples are dropped from the front
 * (scenarios usually warm up separately and pass 0).
 */
export function summarize(samples, { warmup = 0 } = {}) {
  const kept = samples.slice(warmup);
  const sorted = [...kept].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n ? sorted.reduce((a, b) => a + b, 0) / n : NaN;
  return {
    n,
    p50: percentileSorted(sorted, 50),
    p90: percentileSorted(sorted, 90),
    p99: percentileSorted(sorted, 99),
    mean,
    min: n ? sorted[0] : NaN,
    max: n ? sorted[n - 1] : NaN,
  };
}

export const median = (xs) => summarize(xs).p50;

export const round = (x, digits = 2) =>
  Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x;
