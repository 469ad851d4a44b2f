/**
 * Typed errors raised by the resilience policies.
 *
 * Every error extends {@link ResilienceError}, itself a {@link HeraldError}, and carries a stable
 * `HERALD_*` code: branch on it with `isHeraldError(err, 'HERALD_BROKEN_CIRCUIT')`, which also works
 * across two loaded copies of the package and after serialisation (class identity does not).
 */
import { ConfigError, HeraldError } from '../contracts/errors.js';

export { ConfigError, HeraldError, isHeraldError } from '../contracts/errors.js';

/** Stable codes of the resilience errors (all in Herald's one `HERALD_*` namespace). */
export type ResilienceErrorCode =
  | 'HERALD_BROKEN_CIRCUIT'
  | 'HERALD_ISOLATED_CIRCUIT'
  | 'HERALD_BULKHEAD_REJECTED'
  | 'HERALD_TIMEOUT'
  | 'HERALD_RATE_LIMITED'
  | 'HERALD_RETRY_EXHAUSTED'
  | 'HERALD_LOAD_SHED';

/** Base class of the errors a policy raises when it refuses or gives up on a call. */
export class ResilienceError extends HeraldError {
  declare readonly code: ResilienceErrorCode;

  constructor(code: ResilienceErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
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
      'HERALD_BROKEN_CIRCUIT',
      `Circuit breaker "${breaker}" is open; the call was not attempted. ` +
        `It admits probe calls again in ${Math.max(0, Math.ceil(retryAfterMs))} ms.`,
    );
  }
}

/** The circuit breaker was isolated by hand and refuses every call until it is reset. */
export class IsolatedCircuitError extends ResilienceError {
  constructor(readonly breaker: string) {
    super(
      'HERALD_ISOLATED_CIRCUIT',
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
      'HERALD_BULKHEAD_REJECTED',
      `Bulkhead "${bulkhead}" is full (${maxConcurrent} running, ${maxQueue} queued); ` +
        `raise maxConcurrent/maxQueue or shed load upstream.`,
    );
  }
}

/** The call did not finish within its time budget. */
export class TimeoutError extends ResilienceError {
  constructor(
    readonly timeoutMs: number,
    /** `operation` names what timed out in the message (e.g. `handler billing`). */
    options?: { cause?: unknown; operation?: string },
  ) {
    super('HERALD_TIMEOUT', `${options?.operation ?? 'Operation'} timed out after ${timeoutMs} ms.`, options);
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
      'HERALD_RATE_LIMITED',
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
      'HERALD_LOAD_SHED',
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
      'HERALD_RETRY_EXHAUSTED',
      `Gave up after ${attempts} attempt(s) (${reason === 'attempts' ? 'maxRetries reached' : 'maxElapsedMs reached'}); ` +
        `last failure: ${describe(cause)}`,
      { cause },
    );
  }
}

/**
 * @deprecated Throw and catch {@link ConfigError} (code `HERALD_CONFIG_INVALID`): this subclass only
 * keeps `new ResilienceConfigError('Owner: message')` compiling; the part before the first colon
 * becomes the `field`.
 */
export class ResilienceConfigError extends ConfigError {
  constructor(message: string) {
    const colon = message.indexOf(': ');
    super(colon > 0 ? message.slice(0, colon) : 'options', colon > 0 ? message.slice(colon + 2) : message);
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
