import { ConfigError } from '../core/errors.js';
import {
  ANOMALY_DEFAULTS,
  flowStoppedMinRate,
  isAnomalous,
  robustScore,
  SIGNALS,
  type Score,
  type SignalDefinition,
  type SignalName,
} from './definition.js';

/** Which baseline a score was computed against. */
export type BaselineKind = 'seasonal' | 'short';

/** An alert changing state. */
export interface AnomalyEvent {
  /** `anomaly`: |score| above the threshold; `flow-stopped`: rate 0 while traffic is expected. */
  readonly kind: 'anomaly' | 'flow-stopped';
  readonly state: 'firing' | 'resolved';
  readonly signal: SignalName;
  /** The series' labels (`event_type`, and `group` for consumer-side signals). */
  readonly labels: Readonly<Record<string, string>>;
  /** Evaluation time, ms since the epoch. */
  readonly at: number;
  /** Since when the condition has held (firing) or held until (resolved), ms since the epoch. */
  readonly since: number;
  /** The last score (for a resolved alert: the score that ended it, when there was one). */
  readonly score?: Score;
  readonly baseline?: BaselineKind;
}

/** Options of {@link AnomalyDetector}; every field defaults to {@link ANOMALY_DEFAULTS}. */
export interface AnomalyDetectorOptions {
  readonly windowSeconds?: number;
  readonly stepSeconds?: number;
  readonly seasonalOffsetsSeconds?: readonly number[];
  readonly shortOffsetsSeconds?: readonly number[];
  readonly threshold?: number;
  readonly forSeconds?: number;
  readonly flowStoppedMinEventsPerWindow?: number;
  readonly flowStoppedForSeconds?: number;
  readonly madFactor?: number;
  /** Per-signal floors, e.g. `{ publish_rate: { absoluteFloor: 1 } }` for a busy service. */
  readonly floors?: Partial<Record<SignalName, { absoluteFloor?: number; relativeFloor?: number }>>;
  /** Watched signals; default all. */
  readonly signals?: readonly SignalName[];
  /** Series tracked per signal before new ones are ignored (bounds memory). Default 1000. */
  readonly maxSeries?: number;
}

/** The latest evaluation of one series. */
export interface SeriesStatus {
  readonly signal: SignalName;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number | undefined;
  readonly score: Score | undefined;
  readonly baseline: BaselineKind | undefined;
  /** True until the series has the history its short-term baseline needs. */
  readonly warmingUp: boolean;
  readonly firing: readonly AnomalyEvent['kind'][];
}

const KNOWN_OPTIONS = new Set([
  'windowSeconds',
  'stepSeconds',
  'seasonalOffsetsSeconds',
  'shortOffsetsSeconds',
  'threshold',
  'forSeconds',
  'flowStoppedMinEventsPerWindow',
  'flowStoppedForSeconds',
  'madFactor',
  'floors',
  'signals',
  'maxSeries',
]);

interface Rule {
  since: number | undefined;
  firing: boolean;
}

interface Series {
  readonly labels: Readonly<Record<string, string>>;
  /** Transformed values (ln for log signals) by step, NaN where there was no value. */
  readonly ring: Float64Array;
  first: number | undefined;
  last: number | undefined;
  latest: SeriesStatus | undefined;
  readonly rules: Record<AnomalyEvent['kind'], Rule>;
}

/**
 * Scores each (signal, series) once per step against the median of the same window one, two and
 * three weeks earlier (or, without that history, 15, 30 and 45 minutes earlier), and raises an
 * alert when the score stays beyond the threshold for `forSeconds`. Feed it with {@link observe};
 * {@link AnomalyMonitor} does that from a prom-client registry.
 */
export class AnomalyDetector {
  readonly windowSeconds: number;
  readonly stepSeconds: number;
  readonly threshold: number;
  readonly forSeconds: number;
  private readonly seasonalSteps: readonly number[];
  private readonly shortSteps: readonly number[];
  private readonly flowStoppedRate: number;
  private readonly flowStoppedForSeconds: number;
  private readonly madFactor: number;
  private readonly signals: ReadonlyMap<SignalName, SignalDefinition>;
  private readonly maxSeries: number;
  private readonly capacity: number;
  private readonly series = new Map<SignalName, Map<string, Series>>();
  private readonly listeners = new Set<(e: AnomalyEvent) => void>();

  constructor(options: AnomalyDetectorOptions = {}) {
    for (const key of Object.keys(options))
      if (!KNOWN_OPTIONS.has(key))
        throw new ConfigError(
          key,
          `unknown anomaly detector option; known: ${[...KNOWN_OPTIONS].join(', ')}`,
        );
    const d = ANOMALY_DEFAULTS;
    this.stepSeconds = positive('stepSeconds', options.stepSeconds ?? d.stepSeconds);
    this.windowSeconds = this.multiple('windowSeconds', options.windowSeconds ?? d.windowSeconds);
    this.threshold = positive('threshold', options.threshold ?? d.threshold);
    this.forSeconds = nonNegative('forSeconds', options.forSeconds ?? d.forSeconds);
    this.madFactor = positive('madFactor', options.madFactor ?? d.madFactor);
    const offsets = (field: string, list: readonly number[]): number[] => {
      if (list.length === 0) throw new ConfigError(field, 'needs at least one offset');
      return list.map((s, i) => this.multiple(`${field}[${i}]`, s) / this.stepSeconds);
    };
    this.seasonalSteps = offsets(
      'seasonalOffsetsSeconds',
      options.seasonalOffsetsSeconds ?? d.seasonalOffsetsSeconds,
    );
    this.shortSteps = offsets('shortOffsetsSeconds', options.shortOffsetsSeconds ?? d.shortOffsetsSeconds);
    this.flowStoppedRate = flowStoppedMinRate(
      this.windowSeconds,
      positive(
        'flowStoppedMinEventsPerWindow',
        options.flowStoppedMinEventsPerWindow ?? d.flowStoppedMinEventsPerWindow,
      ),
    );
    this.flowStoppedForSeconds = nonNegative(
      'flowStoppedForSeconds',
      options.flowStoppedForSeconds ?? d.flowStoppedForSeconds,
    );
    this.maxSeries = positive('maxSeries', options.maxSeries ?? 1000);
    const names = options.signals ?? SIGNALS.map((s) => s.name);
    const byName = new Map(SIGNALS.map((s) => [s.name, s]));
    const chosen = new Map<SignalName, SignalDefinition>();
    for (const n of names) {
      const def = byName.get(n);
      if (!def)
        throw new ConfigError('signals', `unknown signal "${n}"; known: ${[...byName.keys()].join(', ')}`);
      const floor = options.floors?.[n];
      chosen.set(n, {
        ...def,
        absoluteFloor: positive(`floors.${n}.absoluteFloor`, floor?.absoluteFloor ?? def.absoluteFloor),
        relativeFloor: nonNegative(`floors.${n}.relativeFloor`, floor?.relativeFloor ?? def.relativeFloor),
      });
    }
    for (const n of Object.keys(options.floors ?? {}))
      if (!byName.has(n as SignalName))
        throw new ConfigError('floors', `unknown signal "${n}"; known: ${[...byName.keys()].join(', ')}`);
    this.signals = chosen;
    this.capacity = Math.max(...this.seasonalSteps, ...this.shortSteps) + 1;
  }

  /** Signals this detector watches. */
  get watched(): readonly SignalDefinition[] {
    return [...this.signals.values()];
  }

  /** How long a new series is observed before it can alert (the short-term baseline's reach). */
  get warmupSeconds(): number {
    return Math.max(...this.shortSteps) * this.stepSeconds;
  }

  /** Subscribes to alert state changes; returns the unsubscribe function. */
  onEvent(listener: (event: AnomalyEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Records the value of one series at one step and evaluates its rules. `value` is in the
   * signal's natural unit (rates per second, a ratio, latency in seconds); `undefined` means no
   * data this step (e.g. no handler ran, so there is no latency). Steps are `atMs` rounded to
   * `stepSeconds`; call once per step and series, in time order.
   */
  observe(
    signal: SignalName,
    labels: Readonly<Record<string, string>>,
    value: number | undefined,
    atMs: number,
  ): void {
    const def = this.signals.get(signal);
    if (!def) return;
    const s = this.seriesFor(def, labels);
    if (!s) return;
    const step = Math.round(atMs / 1000 / this.stepSeconds);
    if (s.last !== undefined && step <= s.last) return;
    if (s.last !== undefined)
      for (let k = s.last + 1; k < step && k <= s.last + this.capacity; k++) s.ring[k % this.capacity] = NaN;
    const x =
      value === undefined || !Number.isFinite(value)
        ? NaN
        : def.scale === 'log'
          ? Math.log(Math.max(value, 1e-6))
          : value;
    s.ring[step % this.capacity] = x;
    s.first ??= step;
    s.last = step;
    this.evaluate(def, s, step, x, value, atMs);
  }

  /** Every alert firing now. */
  firing(): AnomalyEvent[] {
    const out: AnomalyEvent[] = [];
    for (const [signal, map] of this.series)
      for (const s of map.values())
        for (const kind of ['anomaly', 'flow-stopped'] as const)
          if (s.rules[kind].firing)
            out.push({
              kind,
              state: 'firing',
              signal,
              labels: s.labels,
              at: (s.last ?? 0) * this.stepSeconds * 1000,
              since: s.rules[kind].since ?? 0,
              ...(s.latest?.score ? { score: s.latest.score } : {}),
              ...(s.latest?.baseline ? { baseline: s.latest.baseline } : {}),
            });
    return out;
  }

  /** The latest evaluation of every tracked series. */
  status(): SeriesStatus[] {
    return [...this.series.values()].flatMap((m) =>
      [...m.values()].flatMap((s) => (s.latest ? [s.latest] : [])),
    );
  }

  private seriesFor(def: SignalDefinition, labels: Readonly<Record<string, string>>): Series | undefined {
    let map = this.series.get(def.name);
    if (!map) this.series.set(def.name, (map = new Map()));
    const key = def.labels.map((l) => labels[l] ?? '').join('\u0000');
    let s = map.get(key);
    if (!s) {
      if (map.size >= this.maxSeries) return undefined;
      const kept = Object.fromEntries(def.labels.map((l) => [l, labels[l] ?? '']));
      s = {
        labels: kept,
        ring: new Float64Array(this.capacity).fill(NaN),
        first: undefined,
        last: undefined,
        latest: undefined,
        rules: {
          anomaly: { since: undefined, firing: false },
          'flow-stopped': { since: undefined, firing: false },
        },
      };
      map.set(key, s);
    }
    return s;
  }

  /** Values `steps` back, or undefined unless every one of them exists. */
  private points(s: Series, step: number, steps: readonly number[]): number[] | undefined {
    const out: number[] = [];
    for (const k of steps) {
      const at = step - k;
      if (s.first === undefined || at < s.first) return undefined;
      const v = s.ring[at % this.capacity]!;
      if (Number.isNaN(v)) return undefined;
      out.push(v);
    }
    return out;
  }

  private evaluate(
    def: SignalDefinition,
    s: Series,
    step: number,
    x: number,
    raw: number | undefined,
    atMs: number,
  ): void {
    let score: Score | undefined;
    let baseline: BaselineKind | undefined;
    const seasonal = this.points(s, step, this.seasonalSteps);
    const short = seasonal ? undefined : this.points(s, step, this.shortSteps);
    const pts = seasonal ?? short;
    if (pts && !Number.isNaN(x)) {
      baseline = seasonal ? 'seasonal' : 'short';
      score = robustScore(x, pts, {
        madFactor: this.madFactor,
        relativeFloor: def.relativeFloor,
        absoluteFloor: def.absoluteFloor,
      });
    }
    const anomalous = score !== undefined && isAnomalous(score.score, def.direction, this.threshold);
    const stopped =
      def.flowStopped && score !== undefined && raw === 0 && score.baseline >= this.flowStoppedRate;
    const ctx = { def, s, atMs, score, baseline };
    this.advance(ctx, 'anomaly', anomalous, this.forSeconds);
    this.advance(ctx, 'flow-stopped', stopped, this.flowStoppedForSeconds);
    s.latest = {
      signal: def.name,
      labels: s.labels,
      value: raw,
      score,
      baseline,
      warmingUp:
        pts === undefined && (s.first === undefined || step - s.first < Math.max(...this.shortSteps)),
      firing: (['anomaly', 'flow-stopped'] as const).filter((k) => s.rules[k].firing),
    };
  }

  /** Prometheus' `for` semantics: pending from the first true evaluation, firing once it has held `forSeconds`. */
  private advance(
    ctx: {
      def: SignalDefinition;
      s: Series;
      atMs: number;
      score: Score | undefined;
      baseline: BaselineKind | undefined;
    },
    kind: AnomalyEvent['kind'],
    active: boolean,
    forSeconds: number,
  ): void {
    const rule = ctx.s.rules[kind];
    if (active) {
      rule.since ??= ctx.atMs;
      if (!rule.firing && ctx.atMs - rule.since >= forSeconds * 1000) {
        rule.firing = true;
        this.emit(ctx, kind, 'firing', rule.since);
      }
      return;
    }
    if (rule.firing) this.emit(ctx, kind, 'resolved', rule.since ?? ctx.atMs);
    rule.firing = false;
    rule.since = undefined;
  }

  private emit(
    ctx: {
      def: SignalDefinition;
      s: Series;
      atMs: number;
      score: Score | undefined;
      baseline: BaselineKind | undefined;
    },
    kind: AnomalyEvent['kind'],
    state: AnomalyEvent['state'],
    since: number,
  ): void {
    const event: AnomalyEvent = {
      kind,
      state,
      signal: ctx.def.name,
      labels: ctx.s.labels,
      at: ctx.atMs,
      since,
      ...(ctx.score ? { score: ctx.score } : {}),
      ...(ctx.baseline ? { baseline: ctx.baseline } : {}),
    };
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        // A failing listener must not stop the evaluation of other series.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  private multiple(field: string, seconds: number): number {
    positive(field, seconds);
    const ratio = seconds / this.stepSeconds;
    if (Math.abs(ratio - Math.round(ratio)) > 1e-9)
      throw new ConfigError(field, `must be a multiple of stepSeconds (${this.stepSeconds}), got ${seconds}`);
    return seconds;
  }
}

function positive(field: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
    throw new ConfigError(field, `must be a positive number, got ${String(v)}`);
  return v;
}

function nonNegative(field: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new ConfigError(field, `must be a number ≥ 0, got ${String(v)}`);
  return v;
}
