/** Small statistics helpers for the benchmarks: percentiles, means, rounding. */

/** The p-th percentile (0..100) by nearest rank on a sorted copy; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  return samples.reduce((sum, x) => sum + x, 0) / samples.length;
}

export function max(samples: readonly number[]): number {
  return samples.length === 0 ? Number.NaN : samples.reduce((m, x) => (x > m ? x : m), -Infinity);
}

export function min(samples: readonly number[]): number {
  return samples.length === 0 ? Number.NaN : samples.reduce((m, x) => (x < m ? x : m), Infinity);
}

/** Rounded to `digits` decimals (keeps JSON and tables readable). */
export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** p50 / p90 / p99 / max / mean / n of a sample, rounded. */
export function summary(samples: readonly number[], digits = 1): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  return {
    n: samples.length,
    p50: round(percentile(samples, 50), digits),
    p90: round(percentile(samples, 90), digits),
    p99: round(percentile(samples, 99), digits),
    max: round(max(samples), digits),
    mean: round(mean(samples), digits),
  };
}

/**
 * Busy time of a set of intervals, each counted up to `cap` at once: the integral of
 * min(live(t), cap) over [from, to]. Used for slot utilisation (call-seconds within slot-seconds).
 */
export function cappedOccupancy(intervals: ReadonlyArray<{ start: number; end: number }>, cap: number, from: number, to: number): number {
  const edges: Array<[number, number]> = [];
  for (const { start, end } of intervals) {
    const s = Math.max(start, from);
    const e = Math.min(end, to);
    if (e <= s) continue;
    edges.push([s, 1], [e, -1]);
  }
  // Ends before starts at the same instant: a handoff at one instant never counts as cap + 1.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let live = 0;
  let last = from;
  let busy = 0;
  for (const [t, delta] of edges) {
    busy += Math.min(live, cap) * (t - last);
    live += delta;
    last = t;
  }
  busy += Math.min(live, cap) * (to - last);
  return busy;
}
