// Time ranges of the charts.

/** stepFor picks a bucket so that a range gives at most about 500 points, in whole seconds. */
export function stepFor(spanMs: number): string {
  const s = Math.max(1, Math.ceil(spanMs / 500 / 1000));
  return `${s}s`;
}

export const ranges = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3 } as const;
export type RangeKey = keyof typeof ranges;

/**
 * aroundAlert is the window a chart of an alert shows: the hour before it
 * started (what led up to it), then up to now, at most an hour after it.
 */
export function aroundAlert(startedAt: number, now: number): { from: number; to: number } {
  return { from: startedAt - 3600e3, to: Math.max(startedAt + 60e3, Math.min(now, startedAt + 3600e3)) };
}
