import { ConfigError } from '../../contracts/errors.js';
import { ExponentialBackoff } from '../../resilience/retry/backoff.js';

/** How a failing message is retried through delayed redelivery before it is dead-lettered. */
export interface RetryOptions {
  /** Total attempts including the first; default 4 (the first try and 3 retries). */
  readonly maxAttempts?: number;
  /** Delay before the first retry; default 100 ms. */
  readonly initialDelayMs?: number;
  /** Growth per attempt; default 2. */
  readonly multiplier?: number;
  /** Cap on any single delay; default 10 000 ms. */
  readonly maxDelayMs?: number;
  /**
   * `true` (default) or `'equal'`: a random delay between half and all of the computed one, which
   * spreads retry storms while keeping a lower bound. `'full'`: anywhere from 0 to the computed
   * delay. `false` or `'none'`: exact delays.
   */
  readonly jitter?: boolean | 'none' | 'equal' | 'full';
}

/** A subscription's retry schedule: the attempt budget and the resilience library's backoff. */
export interface ResolvedRetry {
  readonly maxAttempts: number;
  readonly backoff: ExponentialBackoff;
}

/** No retries: the first failure dead-letters. */
export const NO_RETRY: ResolvedRetry = {
  maxAttempts: 1,
  backoff: new ExponentialBackoff({ initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 'none' }),
};

/**
 * Checks the options with field names as users write them (`retry.maxAttempts`), then builds the
 * one backoff implementation Herald has (`src/resilience/retry/backoff.ts`).
 */
export function resolveRetry(options: RetryOptions | false | undefined, field = 'retry'): ResolvedRetry {
  if (options === false) return NO_RETRY;
  const maxAttempts = options?.maxAttempts ?? 4;
  const initialDelayMs = options?.initialDelayMs ?? 100;
  const maxDelayMs = options?.maxDelayMs ?? 10_000;
  const multiplier = options?.multiplier ?? 2;
  const jitter = options?.jitter ?? true;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new ConfigError(`${field}.maxAttempts`, `must be an integer >= 1, got ${String(maxAttempts)}`);
  }
  for (const [k, v] of [
    ['initialDelayMs', initialDelayMs],
    ['maxDelayMs', maxDelayMs],
  ] as const) {
    if (!Number.isFinite(v) || v < 0)
      throw new ConfigError(`${field}.${k}`, `must be a number >= 0, got ${String(v)}`);
  }
  if (!Number.isFinite(multiplier) || multiplier < 1) {
    throw new ConfigError(`${field}.multiplier`, `must be a number >= 1, got ${String(multiplier)}`);
  }
  if (![true, false, 'none', 'equal', 'full'].includes(jitter)) {
    throw new ConfigError(
      `${field}.jitter`,
      `must be true, false, 'none', 'equal' or 'full', got ${JSON.stringify(jitter)}`,
    );
  }
  return {
    maxAttempts,
    backoff: new ExponentialBackoff(
      {
        // The cap wins over a larger first delay, as it always did.
        initialDelayMs: Math.min(initialDelayMs, maxDelayMs),
        maxDelayMs,
        multiplier,
        jitter: jitter === true ? 'equal' : jitter === false ? 'none' : jitter,
      },
      field,
    ),
  };
}

/** Delay before the retry that follows failed attempt `attempt` (1-based). */
export function retryDelay(
  policy: ResolvedRetry,
  attempt: number,
  random: () => number = Math.random,
): number {
  return Math.round(policy.backoff.delay(attempt, 0, random));
}
