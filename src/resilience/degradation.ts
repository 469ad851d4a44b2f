import { systemClock, type Clock } from './clock.js';
import { ConfigError } from '../contracts/errors.js';
import { Emitter } from './events.js';
import type { ResilienceMetrics } from './policy.js';
import { RollingBuckets } from './rolling.js';
import { int, num, positive } from './validate.js';

/** Service levels, from healthy to most degraded. */
export type DegradationLevel = 'normal' | 'partial' | 'full';

const LEVELS: readonly DegradationLevel[] = ['normal', 'partial', 'full'];

/** Escalation thresholds for one level; either one crossing is enough. */
export interface LevelThresholds {
  /** Failed / total over the window, in [0, 1]. */
  errorRate?: number;
  /** The configured latency percentile, in ms. */
  latencyMs?: number;
}

export interface DegradationOptions {
  name?: string;
  /** Default 60 000. */
  windowMs?: number;
  /** Default 12. */
  buckets?: number;
  /** No automatic change before the window holds this many samples. Default 20. */
  minSamples?: number;
  /** Latency percentile compared with `latencyMs`, in (0, 1). Default 0.99. */
  percentile?: number;
  /** Default `{ partial: { errorRate: 0.1, latencyMs: 1000 }, full: { errorRate: 0.5, latencyMs: 5000 } }`. */
  thresholds?: { partial?: LevelThresholds; full?: LevelThresholds };
  /** Hysteresis: to step down, the figures must drop below `threshold × recoveryFactor`. Default 0.8. */
  recoveryFactor?: number;
  /** ...and stay there this long. Default 30 000. */
  recoveryHoldMs?: number;
  /** Re-evaluation at most this often when recording. Default 1 000. */
  evaluateEveryMs?: number;
  /** Feature → the most degraded level at which it stays on (e.g. `{ recommendations: 'normal' }`). */
  features?: Record<string, DegradationLevel>;
  metrics?: ResilienceMetrics;
  clock?: Clock;
}

export interface LevelChangeEvent {
  from: DegradationLevel;
  to: DegradationLevel;
  reason: 'auto' | 'override' | 'override-cleared';
  errorRate: number;
  latencyMs: number;
}

// Latency histogram: 4 bins per power of two up to ~2^24 ms; constant memory per bucket.
const SUB = 4;
const BINS = 24 * SUB + 1;
const COUNT = 0;
const ERRORS = 1;
const FIRST_BIN = 2;

function binOf(ms: number): number {
  return Math.min(BINS - 1, Math.floor(Math.log2(Math.max(ms, 0) + 1) * SUB));
}

function binUpper(bin: number): number {
  return 2 ** ((bin + 1) / SUB) - 1;
}

/**
 * Picks a service level from the error rate and a latency percentile over a sliding window, with
 * hysteresis (a lower recovery threshold plus a hold time) so it does not flap, a manual override, and
 * per-level feature switches.
 *
 * @example
 * const degradation = new DegradationManager({ features: { recommendations: 'normal', search: 'partial' } });
 * degradation.record(durationMs, ok);
 * if (degradation.isEnabled('recommendations')) await addRecommendations(page);
 */
export class DegradationManager {
  readonly name: string;
  private readonly window: RollingBuckets;
  private readonly minSamples: number;
  private readonly percentile: number;
  private readonly thresholds: Record<'partial' | 'full', LevelThresholds>;
  private readonly recoveryFactor: number;
  private readonly recoveryHoldMs: number;
  private readonly evaluateEveryMs: number;
  private readonly features: Record<string, DegradationLevel>;
  private readonly clock: Clock;
  private readonly metrics: ResilienceMetrics | undefined;
  private auto: DegradationLevel = 'normal';
  private manual: DegradationLevel | undefined = undefined;
  private calmSince: number | undefined = undefined;
  private lastEval = Number.NEGATIVE_INFINITY;
  private readonly changes = new Emitter<LevelChangeEvent>();
  /** Subscribes to level changes (automatic or manual). */
  readonly onLevelChange = this.changes.on;

  constructor(options: DegradationOptions = {}) {
    const O = 'DegradationManager';
    this.name = options.name ?? 'degradation';
    const windowMs = positive(O, 'windowMs', options.windowMs ?? 60_000);
    this.window = new RollingBuckets(windowMs, int(O, 'buckets', options.buckets ?? 12, 1), FIRST_BIN + BINS);
    this.minSamples = int(O, 'minSamples', options.minSamples ?? 20, 1);
    this.percentile = positive(O, 'percentile', options.percentile ?? 0.99, 1);
    const t = options.thresholds ?? {};
    this.thresholds = {
      partial: t.partial ?? { errorRate: 0.1, latencyMs: 1000 },
      full: t.full ?? { errorRate: 0.5, latencyMs: 5000 },
    };
    for (const level of ['partial', 'full'] as const) {
      const th = this.thresholds[level];
      if (th.errorRate !== undefined) positive(O, `thresholds.${level}.errorRate`, th.errorRate, 1);
      if (th.latencyMs !== undefined) positive(O, `thresholds.${level}.latencyMs`, th.latencyMs);
    }
    this.recoveryFactor = positive(O, 'recoveryFactor', options.recoveryFactor ?? 0.8, 1);
    this.recoveryHoldMs = num(O, 'recoveryHoldMs', options.recoveryHoldMs ?? 30_000, 0);
    this.evaluateEveryMs = num(O, 'evaluateEveryMs', options.evaluateEveryMs ?? 1_000, 0);
    this.features = { ...(options.features ?? {}) };
    for (const [feature, level] of Object.entries(this.features)) {
      if (!LEVELS.includes(level)) {
        throw new ConfigError(
          `${O}.features.${feature}`,
          `must be 'normal', 'partial' or 'full', got ${String(level)}`,
        );
      }
    }
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
  }

  /** Effective level: the manual override if set, else the automatic one. */
  get level(): DegradationLevel {
    return this.manual ?? this.auto;
  }

  /** Records one call outcome; may re-evaluate the level. */
  record(durationMs: number, ok = true): void {
    const now = this.clock.now();
    this.window.add(now, COUNT, 1);
    if (!ok) this.window.add(now, ERRORS, 1);
    this.window.add(now, FIRST_BIN + binOf(durationMs), 1);
    if (now - this.lastEval >= this.evaluateEveryMs) this.evaluate();
  }

  /** Current error rate and latency percentile over the window. */
  figures(): { samples: number; errorRate: number; latencyMs: number } {
    this.window.advance(this.clock.now());
    const samples = this.window.sum(COUNT);
    if (samples === 0) return { samples, errorRate: 0, latencyMs: 0 };
    const rank = Math.ceil(samples * this.percentile);
    let seen = 0;
    let latencyMs = 0;
    for (let b = 0; b < BINS; b++) {
      seen += this.window.sum(FIRST_BIN + b);
      if (seen >= rank) {
        latencyMs = binUpper(b);
        break;
      }
    }
    return { samples, errorRate: this.window.sum(ERRORS) / samples, latencyMs };
  }

  /** Re-computes the automatic level now. */
  evaluate(): DegradationLevel {
    const now = this.clock.now();
    this.lastEval = now;
    const { samples, errorRate, latencyMs } = this.figures();
    if (samples < this.minSamples) return this.level;
    const over = (factor: number): number => {
      for (let i = 2; i >= 1; i--) {
        const th = this.thresholds[LEVELS[i] as 'partial' | 'full'];
        if (th.errorRate !== undefined && errorRate >= th.errorRate * factor) return i;
        if (th.latencyMs !== undefined && latencyMs >= th.latencyMs * factor) return i;
      }
      return 0;
    };
    const current = LEVELS.indexOf(this.auto);
    const target = over(1);
    if (target > current) {
      this.calmSince = undefined;
      this.setAuto(LEVELS[target]!, errorRate, latencyMs);
    } else {
      // Step down only once the figures sit below the (lower) recovery thresholds for the hold time.
      const calm = over(this.recoveryFactor);
      if (calm < current) {
        this.calmSince ??= now;
        if (now - this.calmSince >= this.recoveryHoldMs) {
          this.calmSince = undefined;
          this.setAuto(LEVELS[calm]!, errorRate, latencyMs);
        }
      } else this.calmSince = undefined;
    }
    return this.level;
  }

  /** Pins the level by hand; `undefined` returns to automatic control. */
  override(level: DegradationLevel | undefined): void {
    if (level !== undefined && !LEVELS.includes(level)) {
      throw new ConfigError('DegradationManager.override', `level must be 'normal', 'partial' or 'full'`);
    }
    const from = this.level;
    this.manual = level;
    this.emit(from, level === undefined ? 'override-cleared' : 'override');
  }

  /** Whether `feature` is on at the current level. Features not configured are always on. */
  isEnabled(feature: string): boolean {
    const maxLevel = this.features[feature];
    if (maxLevel === undefined) return true;
    return LEVELS.indexOf(this.level) <= LEVELS.indexOf(maxLevel);
  }

  private setAuto(level: DegradationLevel, errorRate: number, latencyMs: number): void {
    const from = this.level;
    this.auto = level;
    this.emit(from, 'auto', errorRate, latencyMs);
  }

  private emit(
    from: DegradationLevel,
    reason: LevelChangeEvent['reason'],
    errorRate = NaN,
    latencyMs = NaN,
  ): void {
    const to = this.level;
    if (from === to) return;
    if (Number.isNaN(errorRate)) ({ errorRate, latencyMs } = this.figures());
    this.changes.emit({ from, to, reason, errorRate, latencyMs });
    this.metrics?.record({ policy: 'degradation', name: this.name, event: 'state', state: to });
  }
}
