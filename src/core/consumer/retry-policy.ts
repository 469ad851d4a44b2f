import { ConfigError } from '../errors.js';

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
   * `true` (default): a random delay between half and all of the computed one ("equal jitter"),
   * which spreads retry storms while keeping a lower bound. `false`: exact delays.
   */
  readonly jitter?: boolean;
}

export interface ResolvedRetry {
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly multiplier: number;
  readonly maxDelayMs: number;
  readonly jitter: boolean;
}

/** No retries: the first failure dead-letters. */
export const NO_RETRY: ResolvedRetry = {
  maxAttempts: 1,
  initialDelayMs: 0,
  multiplier: 1,
  maxDelayMs: 0,
  jitter: false,
};

export function resolveRetry(options: RetryOptions | false | undefined, field = 'retry'): ResolvedRetry {
  if (options === false) return NO_RETRY;
  const r = {
    maxAttempts: options?.maxAttempts ?? 4,
    initialDelayMs: options?.initialDelayMs ?? 100,
    multiplier: options?.multiplier ?? 2,
    maxDelayMs: options?.maxDelayMs ?? 10_000,
    jitter: options?.jitter ?? true,
  };
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1) {
    throw new ConfigError(`${field}.maxAttempts`, `must be an integer >= 1, got ${String(r.maxAttempts)}`);
  }
  for (const k of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (!Number.isFinite(r[k]) || r[k] < 0)
      throw new ConfigError(`${field}.${k}`, `must be a number >= 0, got ${String(r[k])}`);
  }
  if (!Number.isFinite(r.multiplier) || r.multiplier < 1) {
    throw new ConfigError(`${field}.multiplier`, `must be a number >= 1, got ${String(r.multiplier)}`);
  }
  return r;
}

/** Delay before the retry that follows failed attempt `attempt` (1-based). */
export function retryDelay(
  policy: ResolvedRetry,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exact = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.multiplier ** (attempt - 1));
  if (!policy.jitter) return exact;
  return Math.round(exact / 2 + random() * (exact / 2));
}
