import { num, oneOf } from '../validate.js';

/**
 * `full`: uniform in [0, exponential delay] (spreads a thundering herd best).
 * `equal`: uniform in [half, all] of the exponential delay (spreads retries, keeps a lower bound; the
 * consumer's default).
 * `decorrelated`: uniform in [initial, previous × 3], capped (AWS "decorrelated jitter"; ignores multiplier).
 * `none`: the plain exponential delay.
 */
export type Jitter = 'none' | 'full' | 'equal' | 'decorrelated';

export interface BackoffOptions {
  /** First delay. Default 100. */
  initialDelayMs?: number;
  /** Cap on any single delay. Default 10 000. */
  maxDelayMs?: number;
  /** Growth per attempt. Default 2. */
  multiplier?: number;
  /** Default `'full'`. */
  jitter?: Jitter;
}

/** Delay schedule for retries; stateless apart from the previous delay passed in. */
export class ExponentialBackoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly multiplier: number;
  readonly jitter: Jitter;

  constructor(options: BackoffOptions = {}, owner = 'Retry') {
    this.initialDelayMs = num(owner, 'initialDelayMs', options.initialDelayMs ?? 100, 0);
    this.maxDelayMs = num(owner, 'maxDelayMs', options.maxDelayMs ?? 10_000, this.initialDelayMs);
    this.multiplier = num(owner, 'multiplier', options.multiplier ?? 2, 1);
    this.jitter = oneOf(owner, 'jitter', options.jitter ?? 'full', ['none', 'full', 'equal', 'decorrelated']);
  }

  /** Delay before retry number `retry` (1-based); `previous` is the delay used before it. */
  delay(retry: number, previous: number, random: () => number): number {
    if (this.jitter === 'decorrelated') {
      const upper = Math.max(this.initialDelayMs, previous * 3);
      return Math.min(this.maxDelayMs, this.initialDelayMs + random() * (upper - this.initialDelayMs));
    }
    const exp = Math.min(this.maxDelayMs, this.initialDelayMs * this.multiplier ** (retry - 1));
    if (this.jitter === 'full') return random() * exp;
    return this.jitter === 'equal' ? exp / 2 + random() * (exp / 2) : exp;
  }
}
