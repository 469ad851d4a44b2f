/** Overall or per-check state, from best to worst. */
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

/**
 * What a check function may return. Returning nothing means healthy; throwing (or rejecting)
 * means unhealthy with the error's message.
 */
export interface CheckOutcome {
  readonly status?: HealthStatus;
  /** Why the status is not healthy, or a short note. */
  readonly message?: string;
  /** Extra numbers/strings worth showing on /health (lag, rtt, ...). JSON-serialisable. */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** One dependency (or condition) to check. */
export interface HealthCheck {
  /** Unique name, shown on /health. */
  readonly name: string;
  /**
   * Performs the check. The signal aborts when `timeoutMs` elapses: stop waiting and release
   * resources. Throw to report unhealthy.
   */
  check(signal: AbortSignal): Promise<CheckOutcome | void>;
  /**
   * A failing critical check makes the whole report unhealthy (and /ready fail); a failing
   * non-critical one only degrades it. Default true.
   */
  readonly critical?: boolean;
  /** Gives up (unhealthy, "timed out") after this long. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** A successful check slower than this is reported degraded. Default: no threshold. */
  readonly degradedAfterMs?: number;
  /** A result younger than this is reused instead of checking again. Default 1000 ms; 0 = never cache. */
  readonly cacheTtlMs?: number;
}

/** The result of one check, as shown on /health. */
export interface CheckResult {
  readonly name: string;
  readonly status: HealthStatus;
  readonly critical: boolean;
  /** How long the check took, in milliseconds. */
  readonly latencyMs: number;
  /** Why the check is not healthy. */
  readonly error?: string;
  readonly details?: Readonly<Record<string, unknown>>;
  /** When the check finished (ISO 8601). */
  readonly lastChecked: string;
  /** True when this result came from the cache. */
  readonly cached: boolean;
}

/** The aggregate of every check. */
export interface HealthReport {
  readonly status: HealthStatus;
  readonly checks: readonly CheckResult[];
  readonly timestamp: string;
}
