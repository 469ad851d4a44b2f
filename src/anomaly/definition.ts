/**
 * The one definition of Herald's anomaly detection: which signals are watched, how their value is
 * computed from Herald's metrics, and the robust-score maths. The in-process detector
 * (./detector.ts) and the generated Prometheus rules (./promql.ts, deploy/prometheus/
 * herald-anomaly.yml) are both derived from this file, so the two cannot drift apart.
 */

/** Names of the watched signals. */
export type SignalName = 'publish_rate' | 'handling_rate' | 'error_ratio' | 'latency';

/** Which side of the baseline pages: a drop in the error ratio or in latency is good news. */
export type Direction = 'both' | 'up';

/** How one signal is computed and scored. */
export interface SignalDefinition {
  readonly name: SignalName;
  /** What the value is, for docs, alerts and metric help. */
  readonly description: string;
  /** Labels a series is kept apart by (besides Prometheus' `job`). */
  readonly labels: readonly ('event_type' | 'group')[];
  /** `log`: the value is ln(seconds), so a doubling scores the same at 5 ms as at 5 s. */
  readonly scale: 'linear' | 'log';
  /** Scale term as a fraction of |baseline| (0 for log signals, where the floor plays that part). */
  readonly relativeFloor: number;
  /** Smallest scale, in the value's unit: a deviation below 3 × this never pages. */
  readonly absoluteFloor: number;
  readonly direction: Direction;
  /** Whether the "flow stopped" rule applies (rates only). */
  readonly flowStopped: boolean;
  /** Unit shown in alerts. */
  readonly unit: string;
}

const SECOND = 1;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

/** Defaults shared by both implementations; every one can be overridden in-process. */
export const ANOMALY_DEFAULTS = {
  /** Values are rates (or ratios, or mean latency) over this window; one evaluation window. */
  windowSeconds: 5 * MINUTE,
  /** Seasonal baseline: the same window this long ago (weekly seasonality, median of three). */
  seasonalOffsetsSeconds: [1 * WEEK, 2 * WEEK, 3 * WEEK],
  /** Short-term baseline for series without three weeks of history. */
  shortOffsetsSeconds: [15 * MINUTE, 30 * MINUTE, 45 * MINUTE],
  /** 1.4826 × MAD estimates the standard deviation of normally distributed data. */
  madFactor: 1.4826,
  /** |score| above this is anomalous. */
  threshold: 3,
  /** ...for this long before an alert fires (one evaluation window). */
  forSeconds: 5 * MINUTE,
  /** "Flow stopped" needs a baseline that expects at least this many events per window... */
  flowStoppedMinEventsPerWindow: 10,
  /** ...and fires after the rate has been 0 this long. */
  flowStoppedForSeconds: 1 * MINUTE,
  /** In-process sampling step; offsets and the window must be multiples of it. */
  stepSeconds: 1 * MINUTE,
} as const;

/** The watched signals. Rates are per second; the error ratio is in [0, 1]. */
export const SIGNALS: readonly SignalDefinition[] = [
  {
    name: 'publish_rate',
    description: 'events published per second, by event type',
    labels: ['event_type'],
    scale: 'linear',
    relativeFloor: 0.1,
    absoluteFloor: 0.05,
    direction: 'both',
    flowStopped: true,
    unit: 'events/s',
  },
  {
    name: 'handling_rate',
    description: 'handler runs (success or error) per second, by consumer group and event type',
    labels: ['group', 'event_type'],
    scale: 'linear',
    relativeFloor: 0.1,
    absoluteFloor: 0.05,
    direction: 'both',
    flowStopped: true,
    unit: 'runs/s',
  },
  {
    name: 'error_ratio',
    description: 'failed handler runs / all handler runs, by consumer group and event type',
    labels: ['group', 'event_type'],
    scale: 'linear',
    relativeFloor: 0.1,
    absoluteFloor: 0.02,
    direction: 'up',
    flowStopped: false,
    unit: 'ratio',
  },
  {
    name: 'latency',
    description: 'ln(mean handler run time in seconds), by consumer group and event type',
    labels: ['group', 'event_type'],
    scale: 'log',
    relativeFloor: 0,
    absoluteFloor: 0.1,
    direction: 'up',
    flowStopped: false,
    unit: 'ln(s)',
  },
];

/** Median of a non-empty list (mean of the middle two for an even length). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Result of scoring one value against its baseline points. */
export interface Score {
  readonly value: number;
  readonly baseline: number;
  /** Median absolute deviation of the baseline points. */
  readonly mad: number;
  readonly scale: number;
  /** (value − baseline) / scale. */
  readonly score: number;
}

/** Tunables of {@link robustScore}. */
export interface ScoreOptions {
  readonly madFactor: number;
  readonly relativeFloor: number;
  readonly absoluteFloor: number;
}

/**
 * score = (value − median(points)) / max(madFactor × MAD(points), relativeFloor × |median|,
 * absoluteFloor). The floors keep quiet, regular series (MAD ≈ 0) from paging on noise.
 */
export function robustScore(value: number, points: readonly number[], o: ScoreOptions): Score {
  const baseline = median(points);
  const mad = median(points.map((p) => Math.abs(p - baseline)));
  const scale = Math.max(o.madFactor * mad, o.relativeFloor * Math.abs(baseline), o.absoluteFloor);
  return { value, baseline, mad, scale, score: (value - baseline) / scale };
}

/** Whether a score is anomalous in the signal's alerting direction. */
export function isAnomalous(score: number, direction: Direction, threshold: number): boolean {
  return direction === 'up' ? score > threshold : Math.abs(score) > threshold;
}

/** The smallest baseline (per second) at which a rate of 0 counts as a stopped flow. */
export function flowStoppedMinRate(windowSeconds: number, minEventsPerWindow: number): number {
  return minEventsPerWindow / windowSeconds;
}
