import { context, propagation, type TextMapSetter } from '@opentelemetry/api';
import { systemClock, type Clock } from '../resilience/clock.js';
import { CircuitBreaker, type CircuitBreakerOptions } from '../resilience/circuit-breaker/index.js';
import { ConfigError } from '../contracts/errors.js';
import { Emitter } from '../resilience/events.js';
import type { ResilienceMetrics } from '../resilience/policy.js';
import { LruMap } from '../resilience/rate-limit/lru.js';
import { Retry, type RetryOptions } from '../resilience/retry/index.js';
import { Timeout } from '../resilience/timeout.js';
import { wrap, type PolicyWrap } from '../resilience/wrap.js';

/** Methods retried by default: the idempotent ones (RFC 9110 §9.2.2). */
export const IDEMPOTENT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];

/** Statuses retried by default: timeouts, throttling and transient gateway or server errors. */
export const RETRYABLE_STATUSES: readonly number[] = [408, 429, 500, 502, 503, 504];

export interface HttpRetryOptions extends Omit<RetryOptions, 'retryOnResult' | 'delayFor' | 'clock'> {
  /** Statuses worth retrying. Default {@link RETRYABLE_STATUSES}. */
  statuses?: readonly number[];
  /** Methods retried. Default {@link IDEMPOTENT_METHODS}; a request can opt in with `idempotent: true`. */
  methods?: readonly string[];
  /** A `Retry-After` longer than this is not waited for: the response is returned as is. Default 30 000. */
  maxRetryAfterMs?: number;
}

export interface HttpClientOptions {
  /** Resolves relative request URLs. */
  baseUrl?: string | URL;
  /** Time budget per attempt, up to the response headers. Default 10 000; `false` disables. */
  timeoutMs?: number | false;
  /** Default: 3 retries, 100 ms initial delay, full jitter. `false` disables. */
  retry?: HttpRetryOptions | false;
  /** One breaker per host (`host:port`). Default: breaker defaults, counting network errors and 5xx. `false` disables. */
  breaker?: CircuitBreakerOptions | false;
  /** Breakers kept at most (LRU). Default 1 000. */
  maxHosts?: number;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Injects W3C trace context from the active OpenTelemetry context. Default true (a no-op without an SDK). */
  propagateTrace?: boolean;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  metrics?: ResilienceMetrics;
  clock?: Clock;
}

export interface HttpRequestInit extends RequestInit {
  /** Overrides the method-based idempotency decision for retries (e.g. a POST with an idempotency key). */
  idempotent?: boolean;
}

/** One finished attempt, for metrics and logs. */
export interface HttpAttemptEvent {
  method: string;
  host: string;
  attempt: number;
  durationMs: number;
  status?: number;
  error?: unknown;
}

const headerSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** Parses `Retry-After` (delay-seconds or HTTP-date) into milliseconds. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

interface HostPipelines {
  breaker: CircuitBreaker | undefined;
  retried: PolicyWrap;
  once: PolicyWrap;
}

/**
 * A fetch-based HTTP client with a circuit breaker per host, retries of idempotent requests on
 * retryable statuses and network errors (honouring `Retry-After`), a per-attempt timeout, and W3C
 * trace-context propagation.
 *
 * @example
 * const http = new HttpClient({ baseUrl: 'http://inventory:8080', timeoutMs: 2_000 });
 * const res = await http.request('/items/42');
 */
export class HttpClient {
  private readonly options: HttpClientOptions;
  private readonly doFetch: typeof fetch;
  private readonly clock: Clock;
  private readonly hosts: LruMap<string, HostPipelines>;
  private readonly statuses: ReadonlySet<number>;
  private readonly methods: ReadonlySet<string>;
  private readonly maxRetryAfterMs: number;
  private readonly attempts = new Emitter<HttpAttemptEvent>();
  /** Subscribes to every finished attempt (the metrics hook). */
  readonly onAttempt = this.attempts.on;

  constructor(options: HttpClientOptions = {}) {
    this.options = options;
    this.doFetch = options.fetch ?? globalThis.fetch;
    this.clock = options.clock ?? systemClock;
    const maxHosts = options.maxHosts ?? 1_000;
    if (!Number.isInteger(maxHosts) || maxHosts < 1) {
      throw new ConfigError('HttpClient.maxHosts', `must be an integer >= 1, got ${String(maxHosts)}`);
    }
    this.hosts = new LruMap(maxHosts);
    const retry = options.retry === false ? undefined : (options.retry ?? {});
    this.statuses = new Set(retry?.statuses ?? RETRYABLE_STATUSES);
    this.methods = new Set((retry?.methods ?? IDEMPOTENT_METHODS).map((m) => m.toUpperCase()));
    this.maxRetryAfterMs = retry?.maxRetryAfterMs ?? 30_000;
    // Build once to surface configuration errors at construction, not on the first request.
    this.pipelinesFor('validate');
    this.hosts.delete('validate');
  }

  /** The breaker guarding `host` (`hostname:port`), if breakers are enabled. */
  breakerFor(host: string): CircuitBreaker | undefined {
    return this.pipelinesFor(host).breaker;
  }

  /** Sends a request through the host's breaker, the retry policy (if idempotent) and the timeout. */
  async request(input: string | URL, init: HttpRequestInit = {}): Promise<Response> {
    const url = new URL(input, this.options.baseUrl);
    const method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(this.options.headers);
    new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    if (this.options.propagateTrace !== false) propagation.inject(context.active(), headers, headerSetter);
    const { idempotent, signal: callerSignal, ...rest } = init;
    const retryable = this.options.retry !== false && (idempotent ?? this.methods.has(method));
    const pipelines = this.pipelinesFor(url.host);
    const pipeline = retryable ? pipelines.retried : pipelines.once;
    return pipeline.execute(
      async ({ signal, attempt }) => {
        const started = this.clock.now();
        try {
          const res = await this.doFetch(url, { ...rest, method, headers, signal });
          this.report({
            method,
            host: url.host,
            attempt,
            durationMs: this.clock.now() - started,
            status: res.status,
          });
          return res;
        } catch (error) {
          this.report({ method, host: url.host, attempt, durationMs: this.clock.now() - started, error });
          throw error;
        }
      },
      callerSignal ? { signal: callerSignal } : undefined,
    );
  }

  get(input: string | URL, init: HttpRequestInit = {}): Promise<Response> {
    return this.request(input, { ...init, method: 'GET' });
  }

  post(input: string | URL, body: RequestInit['body'], init: HttpRequestInit = {}): Promise<Response> {
    return this.request(input, { ...init, method: 'POST', body });
  }

  put(input: string | URL, body: RequestInit['body'], init: HttpRequestInit = {}): Promise<Response> {
    return this.request(input, { ...init, method: 'PUT', body });
  }

  delete(input: string | URL, init: HttpRequestInit = {}): Promise<Response> {
    return this.request(input, { ...init, method: 'DELETE' });
  }

  private report(e: HttpAttemptEvent): void {
    if (this.attempts.size > 0) this.attempts.emit(e);
    this.options.metrics?.record({
      policy: 'http-client',
      name: e.host,
      event: e.error !== undefined ? 'error' : String(e.status),
      durationMs: e.durationMs,
    });
  }

  private pipelinesFor(host: string): HostPipelines {
    const existing = this.hosts.get(host);
    if (existing) return existing;
    const o = this.options;
    const breaker =
      o.breaker === false
        ? undefined
        : new CircuitBreaker({
            name: `http:${host}`,
            clock: this.clock,
            isResultFailure: (r) => r instanceof Response && r.status >= 500 && r.status !== 501,
            metrics: o.metrics,
            ...o.breaker,
          });
    const timeout =
      o.timeoutMs === false
        ? undefined
        : new Timeout(o.timeoutMs ?? 10_000, { clock: this.clock, name: `http:${host}` });
    const inner = [breaker, timeout].filter((p) => p !== undefined);
    let retried: PolicyWrap;
    if (o.retry === false) retried = wrap(...inner);
    else {
      const { statuses: _s, methods: _m, maxRetryAfterMs: _x, ...retryOptions } = o.retry ?? {};
      const retry = new Retry({
        name: `http:${host}`,
        clock: this.clock,
        metrics: o.metrics,
        ...retryOptions,
        retryOnResult: (r) => r instanceof Response && this.shouldRetryStatus(r),
        delayFor: ({ result }) =>
          result instanceof Response ? parseRetryAfter(result.headers.get('retry-after')) : undefined,
      });
      // A response we retry past is dropped: release its connection instead of leaking it.
      retry.onRetry(({ result }) => {
        if (result instanceof Response) void result.body?.cancel().catch(() => {});
      });
      retried = wrap(retry, ...inner);
    }
    const pipelines: HostPipelines = { breaker, retried, once: wrap(...inner) };
    this.hosts.set(host, pipelines);
    return pipelines;
  }

  private shouldRetryStatus(res: Response): boolean {
    if (!this.statuses.has(res.status)) return false;
    const after = parseRetryAfter(res.headers.get('retry-after'));
    return after === undefined || after <= this.maxRetryAfterMs;
  }
}
