/**
 * Typed errors raised by the resilience policies.
 *
 * Every error extends {@link ResilienceError} and carries a stable `code`, so callers can branch on
 * `err.code` across package versions and process boundaries (the class identity is lost once an error
 * is serialised, the code is not).
 */

/** Stable codes of every resilience error. */
export type ResilienceErrorCode =
  | 'ERR_BROKEN_CIRCUIT'
  | 'ERR_ISOLATED_CIRCUIT'
  | 'ERR_BULKHEAD_REJECTED'
  | 'ERR_TIMEOUT'
  | 'ERR_RATE_LIMITED'
  | 'ERR_RETRY_EXHAUSTED'
  | 'ERR_LOAD_SHED'
  | 'ERR_RESILIENCE_CONFIG';

/** Base class of all resilience errors. */
export class ResilienceError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ResilienceErrorCode;

  constructor(code: ResilienceErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The circuit breaker is open (or half-open with every probe slot taken) and refused the call. */
export class BrokenCircuitError extends ResilienceError {
  constructor(
    /** Breaker name, for logs. */
    readonly breaker: string,
    /** Milliseconds until the breaker lets a probe through again (0 when only probe slots are full). */
    readonly retryAfterMs: number,
  ) {
    super(
      'ERR_BROKEN_CIRCUIT',
      `Circuit breaker "${breaker}" is open; the call was not attempted. ` +
        `It admits probe calls again in ${Math.max(0, Math.ceil(retryAfterMs))} ms.`,
    );
  }
}

/** The circuit breaker was isolated by hand and refuses every call until it is reset. */
export class IsolatedCircuitError extends ResilienceError {
  constructor(readonly breaker: string) {
    super(
      'ERR_ISOLATED_CIRCUIT',
      `Circuit breaker "${breaker}" is isolated by an operator; call reset() to let calls through again.`,
    );
  }
}

/** The bulkhead has every execution slot and every queue slot taken. */
export class BulkheadRejectedError extends ResilienceError {
  constructor(
    readonly bulkhead: string,
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {
    super(
      'ERR_BULKHEAD_REJECTED',
      `Bulkhead "${bulkhead}" is full (${maxConcurrent} running, ${maxQueue} queued); ` +
        `raise maxConcurrent/maxQueue or shed load upstream.`,
    );
  }
}

/** The call did not finish within its time budget. */
export class TimeoutError extends ResilienceError {
  constructor(
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super('ERR_TIMEOUT', `Operation timed out after ${timeoutMs} ms.`, options);
  }
}

/** A rate limiter refused the call. */
export class RateLimitedError extends ResilienceError {
  constructor(
    readonly limiter: string,
    /** Milliseconds after which the same request would be admitted (best estimate). */
    readonly retryAfterMs: number,
  ) {
    super(
      'ERR_RATE_LIMITED',
      `Rate limiter "${limiter}" refused the call; retry in ${Math.max(0, Math.ceil(retryAfterMs))} ms.`,
    );
  }
}

/** The load shedder dropped the call because the service is running above its estimated capacity. */
export class LoadShedError extends ResilienceError {
  constructor(
    readonly shedder: string,
    readonly inFlight: number,
    readonly maxInFlight: number,
  ) {
    super(
      'ERR_LOAD_SHED',
      `Load shedder "${shedder}" dropped the call: ${inFlight} in flight exceeds the estimated capacity ` +
        `of ${Math.floor(maxInFlight)}.`,
    );
  }
}

/** Every retry attempt failed; `cause` is the last error (or the last rejected result). */
export class RetryExhaustedError extends ResilienceError {
  constructor(
    /** Number of attempts made, the first one included. */
    readonly attempts: number,
    cause: unknown,
    reason: 'attempts' | 'elapsed' = 'attempts',
  ) {
    super(
      'ERR_RETRY_EXHAUSTED',
      `Gave up after ${attempts} attempt(s) (${reason === 'attempts' ? 'maxRetries reached' : 'maxElapsedMs reached'}); ` +
        `last failure: ${describe(cause)}`,
      { cause },
    );
  }
}

/** A policy was constructed with an invalid option; the message names the option. */
export class ResilienceConfigError extends ResilienceError {
  constructor(message: string) {
    super('ERR_RESILIENCE_CONFIG', message);
  }
}

function describe(cause: unknown): string {
  if (cause instanceof Error) return `${cause.name}: ${cause.message}`;
  try {
    return `result ${JSON.stringify(cause)}`;
  } catch {
    return String(cause);
  }
}

/** True for errors produced by aborting a signal (DOMException AbortError or the signal's reason). */
export function isAbortError(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted && err === signal.reason) return true;
  return err instanceof Error && err.name === 'AbortError';
}
