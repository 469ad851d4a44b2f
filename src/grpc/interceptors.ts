/**
 * `@grpc/grpc-js` client interceptors: circuit breaker, retry on retryable status codes, and a default
 * deadline. Order matters: pass `[deadlineInterceptor(…), retryInterceptor(…), breakerInterceptor(…)]`
 * so the deadline bounds all attempts and every attempt goes through the breaker.
 */
import {
  InterceptingCall,
  Metadata,
  status as Status,
  type Interceptor,
  type InterceptingListener,
  type InterceptorOptions,
  type NextCall,
  type StatusObject,
} from '@grpc/grpc-js';
import { systemClock, type Clock } from '../resilience/clock.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker/index.js';
import { ResilienceConfigError } from '../resilience/errors.js';
import type { ResilienceMetrics } from '../resilience/policy.js';
import { ExponentialBackoff, type BackoffOptions } from '../resilience/retry/index.js';

/** Codes that say the server (or the path to it) is unhealthy; they count against the breaker. */
export const FAILURE_CODES: readonly Status[] = [
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.DATA_LOSS,
];

/** Codes retried by default: only those where the request was most likely not processed. */
export const RETRYABLE_CODES: readonly Status[] = [Status.UNAVAILABLE, Status.RESOURCE_EXHAUSTED];

/** One finished call or attempt, for metrics (e.g. an observability module's Prometheus histograms). */
export interface GrpcCallEvent {
  interceptor: 'breaker' | 'retry';
  /** Full method path, e.g. `/echo.Echo/Say`. */
  method: string;
  code: Status;
  attempt: number;
  durationMs: number;
}

export interface GrpcHookOptions {
  /** Called after each call (breaker) or attempt (retry). */
  onCall?: (event: GrpcCallEvent) => void;
  metrics?: ResilienceMetrics;
  clock?: Clock;
}

function report(o: GrpcHookOptions, e: GrpcCallEvent): void {
  o.onCall?.(e);
  o.metrics?.record({
    policy: 'grpc-client',
    name: e.method,
    event: Status[e.code] ?? String(e.code),
    durationMs: e.durationMs,
  });
}

/** A call that never reaches the network and ends with `status` as soon as it is started. */
function shortCircuit(
  options: InterceptorOptions,
  nextCall: NextCall,
  code: Status,
  details: string,
): InterceptingCall {
  return new InterceptingCall(nextCall(options), {
    start(_metadata, listener) {
      // grpc-js expects status delivery after start returns, as from the network.
      queueMicrotask(() => listener.onReceiveStatus({ code, details, metadata: new Metadata() }));
    },
    sendMessage() {},
    halfClose() {},
  });
}

export interface BreakerInterceptorOptions extends GrpcHookOptions {
  /** Which final statuses count as failures. Default: code in {@link FAILURE_CODES}. */
  isFailure?: (status: StatusObject) => boolean;
}

/**
 * Guards calls with a circuit breaker: one for the client, or one per method via a function. A call
 * refused by an open breaker ends with `UNAVAILABLE` without touching the network.
 */
export function breakerInterceptor(
  breaker: CircuitBreaker | ((method: string) => CircuitBreaker),
  options: BreakerInterceptorOptions = {},
): Interceptor {
  const clock = options.clock ?? systemClock;
  const isFailure = options.isFailure ?? ((s: StatusObject) => FAILURE_CODES.includes(s.code));
  return (callOptions, nextCall) => {
    const method = callOptions.method_definition.path;
    const b = typeof breaker === 'function' ? breaker(method) : breaker;
    let permit: ReturnType<CircuitBreaker['tryAcquire']>;
    try {
      permit = b.tryAcquire();
    } catch (err) {
      return shortCircuit(callOptions, nextCall, Status.UNAVAILABLE, (err as Error).message);
    }
    const started = clock.now();
    return new InterceptingCall(nextCall(callOptions), {
      start(metadata, listener, next) {
        next(metadata, {
          onReceiveMetadata: (m: Metadata) => listener.onReceiveMetadata(m),
          onReceiveMessage: (m: unknown) => listener.onReceiveMessage(m),
          onReceiveStatus: (s: StatusObject) => {
            if (s.code === Status.CANCELLED) permit.ignore();
            else if (isFailure(s)) permit.failure(s);
            else permit.success();
            report(options, {
              interceptor: 'breaker',
              method,
              code: s.code,
              attempt: 1,
              durationMs: clock.now() - started,
            });
            listener.onReceiveStatus(s);
          },
        });
      },
    });
  };
}

export interface RetryInterceptorOptions extends GrpcHookOptions, BackoffOptions {
  /** Retries after the first attempt. Default 3. */
  maxRetries?: number;
  /** Default {@link RETRYABLE_CODES}. */
  codes?: readonly Status[];
  random?: () => number;
}

/**
 * Retries unary calls that end with a retryable status, with exponential backoff and jitter. The
 * response of the final attempt is delivered; earlier ones are dropped. Streaming calls pass through
 * untouched, since their messages cannot be replayed safely.
 */
export function retryInterceptor(options: RetryInterceptorOptions = {}): Interceptor {
  const maxRetries = options.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new ResilienceConfigError(
      `retryInterceptor: maxRetries must be an integer >= 0, got ${String(maxRetries)}`,
    );
  }
  const backoff = new ExponentialBackoff(options, 'retryInterceptor');
  const codes = new Set(options.codes ?? RETRYABLE_CODES);
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  return (callOptions, nextCall) => {
    const def = callOptions.method_definition;
    if (def.requestStream || def.responseStream) return new InterceptingCall(nextCall(callOptions));
    const method = def.path;
    let metadata: Metadata;
    let request: unknown;
    let listener: InterceptingListener;
    let current = nextCall(callOptions);
    let cancelled = false;
    let timer: unknown;

    const attempt = (n: number, previousDelay: number, call: ReturnType<NextCall>): void => {
      let received: { metadata?: Metadata; message?: unknown; hasMessage: boolean } = { hasMessage: false };
      const started = clock.now();
      call.start(metadata.clone(), {
        onReceiveMetadata: (m: Metadata) => (received.metadata = m),
        onReceiveMessage: (m: unknown) => {
          received.message = m;
          received.hasMessage = true;
        },
        onReceiveStatus: (s: StatusObject) => {
          report(options, {
            interceptor: 'retry',
            method,
            code: s.code,
            attempt: n,
            durationMs: clock.now() - started,
          });
          if (!cancelled && codes.has(s.code) && n <= maxRetries) {
            const delay = backoff.delay(n, previousDelay, random);
            timer = clock.setTimeout(() => {
              if (cancelled) return;
              current = nextCall(callOptions);
              attempt(n + 1, delay, current);
            }, delay);
            return;
          }
          if (received.metadata) listener.onReceiveMetadata(received.metadata);
          if (received.hasMessage) listener.onReceiveMessage(received.message);
          received = { hasMessage: false };
          listener.onReceiveStatus(s);
        },
      });
      call.sendMessage(request);
      call.halfClose();
    };

    // The first call object is handed to grpc-js; our requester drives the real attempts ourselves.
    return new InterceptingCall(current as InterceptingCall, {
      start(m, l) {
        metadata = m;
        listener = l;
      },
      sendMessage(message) {
        request = message;
      },
      halfClose() {
        attempt(1, backoff.initialDelayMs, current);
      },
      cancel(next) {
        cancelled = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        current.cancelWithStatus(Status.CANCELLED, 'Cancelled by the caller');
        next();
      },
    });
  };
}

/** Sets a deadline of `ms` on calls that have none; calls with an explicit deadline keep theirs. */
export function deadlineInterceptor(ms: number): Interceptor {
  if (!(ms > 0))
    throw new ResilienceConfigError(`deadlineInterceptor: ms must be a number > 0, got ${String(ms)}`);
  return (options, nextCall) =>
    new InterceptingCall(
      nextCall(options.deadline === undefined ? { ...options, deadline: Date.now() + ms } : options),
    );
}
