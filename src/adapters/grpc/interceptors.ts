/**
 * `@grpc/grpc-js` client interceptors: circuit breaker, retry on retryable status codes (unary and
 * server-streaming calls), and a default deadline. Order matters: pass `[deadlineInterceptor(…), retryInterceptor(…), breakerInterceptor(…)]`
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
  type Requester,
  type StatusObject,
} from '@grpc/grpc-js';
import { systemClock, type Clock } from '../../resilience/clock.js';
import type { CircuitBreaker } from '../../resilience/circuit-breaker/index.js';
import { ConfigError } from '../../contracts/errors.js';
import type { ResilienceMetrics } from '../../resilience/policy.js';
import { ExponentialBackoff, type BackoffOptions } from '../../resilience/retry/index.js';

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
 * Retries calls that end with a retryable status, with exponential backoff and jitter, as long as the
 * caller has seen no response message yet:
 *
 * - unary calls: the response (metadata, message, status) of the final attempt is delivered; earlier
 *   attempts are dropped.
 * - server-streaming calls: retried until the first response message arrives. Response metadata is held
 *   back until then (or until the final status), so the caller sees one attempt's metadata. Once a
 *   message has been delivered the call is committed to that attempt: a later status, retryable or not,
 *   passes through, since a retry would replay messages the caller already has.
 * - client-streaming and bidirectional calls pass through untouched: the request stream is produced by
 *   the caller and consumed by the server as it goes, so a retry would have to buffer and replay every
 *   request message without knowing whether the server already acted on some of them.
 *
 * Cancelling the call stops the loop, including during a backoff delay (the caller then gets
 * `CANCELLED`). The call's deadline (e.g. from an outer {@link deadlineInterceptor}) bounds all attempts
 * together, and a backoff delay that would end past it is not waited out: the caller gets the last
 * attempt's status at once.
 */
export function retryInterceptor(options: RetryInterceptorOptions = {}): Interceptor {
  const maxRetries = options.maxRetries ?? 3;
  if (!Number.isInteger(maxRetries) || maxRetries < 0) {
    throw new ConfigError(
      'retryInterceptor.maxRetries',
      `must be an integer >= 0, got ${String(maxRetries)}`,
    );
  }
  const settings: RetrySettings = {
    options,
    maxRetries,
    backoff: new ExponentialBackoff(options, 'retryInterceptor'),
    codes: new Set(options.codes ?? RETRYABLE_CODES),
    clock: options.clock ?? systemClock,
    random: options.random ?? Math.random,
  };
  return (callOptions, nextCall) => {
    const def = callOptions.method_definition;
    if (def.requestStream) return new InterceptingCall(nextCall(callOptions));
    return new RetryingCall(new Attempts(settings, callOptions, nextCall, def.responseStream));
  };
}

interface RetrySettings {
  options: GrpcHookOptions;
  maxRetries: number;
  backoff: ExponentialBackoff;
  codes: ReadonlySet<Status>;
  clock: Clock;
  random: () => number;
}

/**
 * The call handed to grpc-js. Start, request message and half-close are captured by the requester;
 * reads, cancellation and the peer are routed to whichever attempt is current, since the base class
 * would send them to the first attempt only.
 */
class RetryingCall extends InterceptingCall {
  constructor(private readonly attempts: Attempts) {
    super(attempts.first, attempts.requester());
  }

  override startRead(): void {
    this.attempts.startRead();
  }

  override cancelWithStatus(code: Status, details: string): void {
    this.attempts.cancel(code, details);
  }

  override getPeer(): string {
    return this.attempts.current.getPeer();
  }
}

/** What `nextCall` returns (grpc-js does not export the interface by name). */
type NextCallResult = ReturnType<NextCall>;

/** The attempts of one call: starts them, buffers their responses, and decides on each status. */
class Attempts {
  readonly first: NextCallResult;
  current: NextCallResult;
  private metadata: Metadata | undefined;
  private request: unknown;
  private listener: InterceptingListener | undefined;
  private readonly method: string;
  private attempt = 0;
  private previousDelay: number;
  /** An attempt has been started and has not reported its status yet. */
  private inFlight = false;
  private cancelled = false;
  private finished = false;
  private timer: unknown = undefined;
  /** Streaming: a message of the current attempt reached the caller, so no more retries. */
  private committed = false;
  /** Streaming: the caller asked for a message that no attempt has delivered yet. */
  private wantsRead = false;

  constructor(
    private readonly s: RetrySettings,
    private readonly callOptions: InterceptorOptions,
    private readonly nextCall: NextCall,
    private readonly streaming: boolean,
  ) {
    this.method = callOptions.method_definition.path;
    this.previousDelay = s.backoff.initialDelayMs;
    // The first call object is handed to grpc-js; the attempts are driven from here.
    this.first = this.current = nextCall(callOptions);
  }

  requester(): Requester {
    return {
      start: (metadata, listener) => {
        this.metadata = metadata;
        this.listener = listener;
      },
      sendMessage: (message) => {
        this.request = message;
      },
      halfClose: () => this.start(this.first),
    };
  }

  startRead(): void {
    if (!this.streaming || this.committed) {
      this.current.startRead();
      return;
    }
    // Remembered across attempts: a retry must get the read the caller asked of the failed attempt.
    this.wantsRead = true;
    if (this.inFlight) this.current.startRead();
  }

  cancel(code: Status, details: string): void {
    this.cancelled = true;
    if (this.timer !== undefined) this.s.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inFlight) this.current.cancelWithStatus(code, details);
    // Between attempts nothing is running that could report the cancellation, so report it here,
    // asynchronously as grpc-js does.
    else process.nextTick(() => this.finish({ code, details, metadata: new Metadata() }));
  }

  private start(call: NextCallResult): void {
    if (this.cancelled || this.finished) return;
    const n = ++this.attempt;
    const started = this.s.clock.now();
    let headers: Metadata | undefined;
    let message: unknown;
    let hasMessage = false;
    this.current = call;
    this.inFlight = true;
    call.start(this.metadata!.clone(), {
      onReceiveMetadata: (m: Metadata) => {
        if (this.committed) this.listener!.onReceiveMetadata(m);
        else headers = m;
      },
      onReceiveMessage: (m: unknown) => {
        if (!this.streaming) {
          message = m;
          hasMessage = true;
          return;
        }
        if (!this.committed) {
          this.committed = true;
          if (headers) this.listener!.onReceiveMetadata(headers);
          headers = undefined;
        }
        this.wantsRead = false;
        this.listener!.onReceiveMessage(m);
      },
      onReceiveStatus: (status: StatusObject) => {
        this.inFlight = false;
        report(this.s.options, {
          interceptor: 'retry',
          method: this.method,
          code: status.code,
          attempt: n,
          durationMs: this.s.clock.now() - started,
        });
        if (!this.cancelled && !this.committed && this.s.codes.has(status.code) && n <= this.s.maxRetries) {
          const delay = this.s.backoff.delay(n, this.previousDelay, this.s.random);
          this.previousDelay = delay;
          // A delay that outlasts the deadline would only turn this status into DEADLINE_EXCEEDED later.
          if (this.endsBeforeDeadline(delay)) {
            this.retryAfter(delay);
            return;
          }
        }
        if (headers) this.listener!.onReceiveMetadata(headers);
        if (hasMessage) this.listener!.onReceiveMessage(message);
        this.finish(status);
      },
    });
    call.sendMessage(this.request);
    call.halfClose();
    if (this.wantsRead) call.startRead();
  }

  private endsBeforeDeadline(delay: number): boolean {
    const deadline = this.callOptions.deadline;
    if (deadline === undefined) return true;
    // grpc-js deadlines are wall-clock: a Date or epoch milliseconds (Infinity for none).
    return Date.now() + delay < (deadline instanceof Date ? deadline.getTime() : deadline);
  }

  private retryAfter(delay: number): void {
    this.timer = this.s.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.cancelled) this.start(this.nextCall(this.callOptions));
    }, delay);
  }

  private finish(status: StatusObject): void {
    if (this.finished) return;
    this.finished = true;
    this.listener?.onReceiveStatus(status);
  }
}

/** Sets a deadline of `ms` on calls that have none; calls with an explicit deadline keep theirs. */
export function deadlineInterceptor(ms: number): Interceptor {
  if (!(ms > 0)) throw new ConfigError('deadlineInterceptor.ms', `must be a number > 0, got ${String(ms)}`);
  return (options, nextCall) =>
    new InterceptingCall(
      nextCall(options.deadline === undefined ? { ...options, deadline: Date.now() + ms } : options),
    );
}
