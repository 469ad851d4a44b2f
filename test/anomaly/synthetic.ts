/**
 * Synthetic event flow with a daily and a weekly season, noise and injected incidents, and the
 * evaluation of a detector on it (recall, detection delay, false positives). Used by the
 * evaluation test and by docs/anomaly-detection.md (figures come from `printEvaluation`).
 */
import { AnomalyDetector, type AnomalyEvent } from '../../src/anomaly/index.js';
import type { SignalName } from '../../src/anomaly/definition.js';
import { mulberry32 } from '../resilience/prng.js';

export const MINUTE_MS = 60_000;
export const DAY_MIN = 1440;
export const WEEK_MIN = 7 * DAY_MIN;
/** Monday 2026-01-05 00:00 UTC: the series start on a week boundary. */
export const T0 = Date.UTC(2026, 0, 5);

export type IncidentKind = 'spike' | 'drop' | 'step' | 'stopped' | 'errors' | 'latency';

export interface Incident {
  readonly kind: IncidentKind;
  /** Minute index of the start. */
  readonly start: number;
  readonly minutes: number;
}

/** What each incident does to the flow. */
export const INCIDENT_EFFECT: Record<
  IncidentKind,
  { rate: number; errorRatio: number; latency: number; label: string }
> = {
  spike: { rate: 3, errorRatio: 0, latency: 1, label: 'rate × 3 for 20 min' },
  drop: { rate: 0.4, errorRatio: 0, latency: 1, label: 'rate × 0.4 for 30 min' },
  step: { rate: 1.6, errorRatio: 0, latency: 1, label: 'rate × 1.6 for 4 h' },
  stopped: { rate: 0, errorRatio: 0, latency: 1, label: 'rate 0 for 30 min' },
  errors: { rate: 1, errorRatio: 0.1, latency: 1, label: 'error ratio + 10 points for 20 min' },
  latency: { rate: 1, errorRatio: 0, latency: 2.5, label: 'latency × 2.5 for 30 min' },
};
const INCIDENT_MINUTES: Record<IncidentKind, number> = {
  spike: 20,
  drop: 30,
  step: 240,
  stopped: 30,
  errors: 20,
  latency: 30,
};
/** Which signal is expected to catch an incident. */
export const INCIDENT_SIGNALS: Record<IncidentKind, readonly SignalName[]> = {
  spike: ['publish_rate', 'handling_rate'],
  drop: ['publish_rate', 'handling_rate'],
  step: ['publish_rate', 'handling_rate'],
  stopped: ['publish_rate', 'handling_rate'],
  errors: ['error_ratio'],
  latency: ['latency'],
};

/** Traffic shape: weekday/weekend and day/night, smooth so the short-term baseline can follow it. */
export function season(minute: number): number {
  const hour = (minute % DAY_MIN) / 60;
  const daily = 1 + 0.6 * Math.sin((2 * Math.PI * (hour - 8)) / 24);
  const day = (minute / DAY_MIN) % 7; // 0 = Monday
  // Weekend factor 0.5, ramped over six hours around the Friday/Saturday and Sunday/Monday midnights.
  const ramp = (x: number): number => Math.min(1, Math.max(0, x));
  const intoWeekend = ramp((day - 4.875) / 0.25);
  const outOfWeekend = ramp((day - 6.875) / 0.25);
  const weekly = 1 - 0.5 * (intoWeekend - outOfWeekend);
  return daily * weekly;
}

function poisson(random: () => number, lambda: number): number {
  if (lambda <= 0) return 0;
  if (lambda > 50) {
    // Normal approximation (Box–Muller) for large means.
    const z = Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
  }
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(random() || 1e-12)) * Math.cos(2 * Math.PI * random());
}

export interface Flow {
  /** Events per minute. */
  readonly events: Float64Array;
  /** Failed handler runs per minute. */
  readonly errors: Float64Array;
  /** Sum of handler run times per minute, seconds. */
  readonly durationSum: Float64Array;
}

/**
 * Per-minute counts for `minutes` minutes at `ratePerSecond` (mean at the season's peak
 * factor of 1), with Poisson noise, 10% per-minute overdispersion, a slow ±5% drift, a 1% base
 * error ratio and 50 ms mean latency that grows with load.
 */
export function generateFlow(
  seed: number,
  ratePerSecond: number,
  minutes: number,
  incidents: readonly Incident[],
): Flow {
  const random = mulberry32(seed);
  const events = new Float64Array(minutes);
  const errors = new Float64Array(minutes);
  const durationSum = new Float64Array(minutes);
  let drift = 0;
  for (let m = 0; m < minutes; m++) {
    drift = 0.999 * drift + 0.002 * gaussian(random);
    const s = season(m);
    let rate = ratePerSecond * s * Math.exp(Math.max(-0.05, Math.min(0.05, drift)) + 0.1 * gaussian(random));
    let errorRatio = 0.01;
    let latency = 0.05 * (0.8 + 0.2 * s) * Math.exp(0.05 * gaussian(random));
    for (const inc of incidents)
      if (m >= inc.start && m < inc.start + inc.minutes) {
        const e = INCIDENT_EFFECT[inc.kind];
        rate *= e.rate;
        errorRatio += e.errorRatio;
        latency *= e.latency;
      }
    const n = poisson(random, rate * 60);
    let failed = 0;
    // Binomial by normal approximation past 50 trials.
    if (n > 50)
      failed = Math.max(
        0,
        Math.round(n * errorRatio + Math.sqrt(n * errorRatio * (1 - errorRatio)) * gaussian(random)),
      );
    else for (let i = 0; i < n; i++) if (random() < errorRatio) failed++;
    events[m] = n;
    errors[m] = Math.min(n, failed);
    durationSum[m] = n * latency;
  }
  return { events, errors, durationSum };
}

/** Feeds a flow to the detector as the in-process monitor would: 5-minute window values every minute. */
export function feed(
  detector: AnomalyDetector,
  flow: Flow,
  labels: Record<string, string>,
  windowMin = 5,
): void {
  const { events, errors, durationSum } = flow;
  let n = 0;
  let e = 0;
  let d = 0;
  const windowS = windowMin * 60;
  for (let m = 0; m < events.length; m++) {
    n += events[m]!;
    e += errors[m]!;
    d += durationSum[m]!;
    if (m >= windowMin) {
      n -= events[m - windowMin]!;
      e -= errors[m - windowMin]!;
      d -= durationSum[m - windowMin]!;
    }
    if (m < windowMin - 1) continue;
    // The value at the end of minute m covers minutes m-4..m.
    const at = T0 + (m + 1) * MINUTE_MS;
    detector.observe('publish_rate', labels, n / windowS, at);
    detector.observe('handling_rate', labels, n / windowS, at);
    detector.observe('error_ratio', labels, n > 0 ? e / n : undefined, at);
    detector.observe('latency', labels, n > 0 ? d / n : undefined, at);
  }
}

/** Random incidents in the evaluation weeks, at least 8 hours apart, at any hour of any day. */
export function placeIncidents(seed: number, fromMinute: number, toMinute: number): Incident[] {
  const random = mulberry32(seed ^ 0x5eed);
  const kinds: IncidentKind[] = ['spike', 'drop', 'step', 'stopped', 'errors', 'latency'];
  const out: Incident[] = [];
  const slot = Math.floor((toMinute - fromMinute) / (kinds.length * 2));
  // Each kind twice, each in its own slot, at a random offset in the slot.
  const order = [...kinds, ...kinds];
  order.forEach((kind, i) => {
    const minutes = INCIDENT_MINUTES[kind];
    const start = fromMinute + i * slot + Math.floor(random() * (slot - minutes - 8 * 60));
    out.push({ kind, start, minutes });
  });
  return out;
}

export interface EvaluationRow {
  readonly ratePerSecond: number;
  readonly incidents: number;
  readonly found: number;
  readonly foundInTwoWindows: number;
  readonly maxDelayMin: number;
  readonly missed: string[];
  /** Alerts that fired outside any incident (plus one hour after it), in the incident run. */
  readonly strayAlerts: number;
  /** Alerts fired over the clean evaluation weeks (seasonal baseline). */
  readonly cleanAlerts: number;
  /** Alerts fired over the clean warm-up weeks (short-term baseline only). */
  readonly cleanWarmupAlerts: number;
  /** Series × weeks evaluated on the clean evaluation weeks. */
  readonly cleanSeriesWeeks: number;
}

const HISTORY_WEEKS = 3;
const EVAL_WEEKS = 2;

/** Runs one seed at one traffic level: a clean run and a run with incidents. */
export function evaluate(seed: number, ratePerSecond: number): EvaluationRow {
  const minutes = (HISTORY_WEEKS + EVAL_WEEKS) * WEEK_MIN;
  const evalFrom = HISTORY_WEEKS * WEEK_MIN;
  const labels = { event_type: 'order.placed', group: 'billing' };

  // Clean run: every firing alert is a false positive.
  const clean = new AnomalyDetector();
  const fired: AnomalyEvent[] = [];
  clean.onEvent((e) => {
    if (e.state === 'firing') fired.push(e);
  });
  feed(clean, generateFlow(seed, ratePerSecond, minutes, []), labels);
  const evalStart = T0 + evalFrom * MINUTE_MS;

  // Incident run: same seed, same noise, incidents injected.
  const incidents = placeIncidents(seed, evalFrom, minutes);
  const detector = new AnomalyDetector();
  const alerts: AnomalyEvent[] = [];
  detector.onEvent((e) => {
    if (e.state === 'firing') alerts.push(e);
  });
  feed(detector, generateFlow(seed, ratePerSecond, minutes, incidents), labels);

  let found = 0;
  let inTwo = 0;
  let maxDelay = 0;
  const missed: string[] = [];
  for (const inc of incidents) {
    const start = T0 + inc.start * MINUTE_MS;
    const hit = alerts.find(
      (a) =>
        INCIDENT_SIGNALS[inc.kind].includes(a.signal) &&
        a.at >= start &&
        a.at <= start + (inc.minutes + 60) * MINUTE_MS,
    );
    if (!hit) {
      missed.push(`${inc.kind}@${fmtMinute(inc.start)}`);
      continue;
    }
    found++;
    const delay = (hit.at - start) / MINUTE_MS;
    maxDelay = Math.max(maxDelay, delay);
    if (delay <= 10) inTwo++;
    else missed.push(`${inc.kind}@${fmtMinute(inc.start)} late ${delay} min`);
  }
  const stray = alerts.filter(
    (a) =>
      !incidents.some((inc) => {
        const start = T0 + inc.start * MINUTE_MS;
        return a.at >= start && a.at <= start + (inc.minutes + 60) * MINUTE_MS;
      }),
  );
  return {
    ratePerSecond,
    incidents: incidents.length,
    found,
    foundInTwoWindows: inTwo,
    maxDelayMin: maxDelay,
    missed,
    strayAlerts: stray.filter((a) => a.at >= evalStart).length,
    cleanAlerts: fired.filter((a) => a.at >= evalStart).length,
    cleanWarmupAlerts: fired.filter((a) => a.at < evalStart).length,
    cleanSeriesWeeks: EVAL_WEEKS * clean.watched.length,
  };
}

function fmtMinute(m: number): string {
  const days = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const d = Math.floor(m / DAY_MIN);
  const hh = Math.floor((m % DAY_MIN) / 60);
  const mm = m % 60;
  return `w${Math.floor(d / 7) + 1}-${days[d % 7]}-${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`;
}
