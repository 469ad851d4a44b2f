/**
 * Built-in checks that need no driver: an HTTP dependency, consumer lag, dead-letter growth,
 * circuit breakers and user-supplied probes. Driver checks live in `herald/<driver>`.
 */
import { ConfigError } from '../core/errors.js';
import type { GroupStats } from '../transport/transport.js';
import type { CheckOutcome, HealthCheck, HealthStatus } from './types.js';

/** Settings every built-in check accepts (see {@link HealthCheck}). */
export interface CheckSettings {
  readonly name?: string;
  readonly critical?: boolean;
  readonly timeoutMs?: number;
  readonly degradedAfterMs?: number;
  readonly cacheTtlMs?: number;
}

function settings(
  defaults: { name: string; critical?: boolean },
  s: CheckSettings,
): Omit<HealthCheck, 'check'> {
  return {
    name: s.name ?? defaults.name,
    critical: s.critical ?? defaults.critical ?? true,
    ...(s.timeoutMs !== undefined ? { timeoutMs: s.timeoutMs } : {}),
    ...(s.degradedAfterMs !== undefined ? { degradedAfterMs: s.degradedAfterMs } : {}),
    ...(s.cacheTtlMs !== undefined ? { cacheTtlMs: s.cacheTtlMs } : {}),
  };
}

export interface ProbeCheckOptions extends CheckSettings {
  readonly name: string;
  /** Resolves when the dependency is fine (its value is ignored); rejects when it is not. */
  readonly probe: (signal: AbortSignal) => Promise<unknown>;
}

/**
 * A check around your own probe function. Use it for dependencies Herald has no built-in check
 * for, e.g. Kafka: `probeCheck({ name: 'kafka', probe: () => admin.describeCluster() })`.
 */
export function probeCheck(options: ProbeCheckOptions): HealthCheck {
  if (typeof options?.probe !== 'function')
    throw new ConfigError('probe', 'must be a function (signal) => Promise');
  return {
    ...settings({ name: options.name }, options),
    check: async (signal) => void (await options.probe(signal)),
  };
}

export interface HttpCheckOptions extends CheckSettings {
  readonly url: string | URL;
  /** Which statuses count as up. Default: 200–399. */
  readonly okStatus?: (status: number) => boolean;
  readonly method?: 'GET' | 'HEAD';
  readonly headers?: Record<string, string>;
}

/** An HTTP dependency: up when it answers with an ok status in time; its latency is the check's. */
export function httpCheck(options: HttpCheckOptions): HealthCheck {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new ConfigError(
      'url',
      `must be an absolute http(s) URL, got ${JSON.stringify(String(options?.url))}`,
    );
  }
  const okStatus = options.okStatus ?? ((s: number) => s >= 200 && s < 400);
  return {
    ...settings({ name: `http:${url.host}` }, options),
    async check(signal) {
      const response = await fetch(url, {
        method: options.method ?? 'GET',
        headers: options.headers,
        signal,
        redirect: 'manual',
      });
      // Drain the body so the socket is reused; the content does not matter.
      await response.arrayBuffer().catch(() => undefined);
      if (!okStatus(response.status)) throw new Error(`${url.href} answered ${response.status}`);
      return { details: { status: response.status } };
    },
  };
}

/** Where to read consumer lag: a transport with `stats()`, and the groups to watch. */
export interface LagSource {
  readonly transport: { readonly name?: string; stats?(topic: string, group: string): Promise<GroupStats> };
  /** Explicit topic/group pairs; default: every subscription of `subscriptions`. */
  readonly groups?: readonly { readonly topic: string; readonly group: string }[];
  /** A Herald's `subscriptions` (each with `topics` and `group`), read at check time. */
  readonly subscriptions?: readonly { readonly topics: readonly string[]; readonly group: string }[];
}

export interface LagCheckOptions extends CheckSettings, LagSource {
  /** Lag (undelivered messages) above this makes the check degraded. */
  readonly maxLag: number;
  /** Lag above this makes it unhealthy. Default: never. */
  readonly failLag?: number;
}

/**
 * Consumer lag over a threshold. Non-critical by default: a backlog means slow, not broken.
 * Pass a Herald directly: `lagCheck({ transport: herald.transport, subscriptions: herald.consumers, maxLag: 1000 })`.
 */
export function lagCheck(options: LagCheckOptions): HealthCheck {
  if (typeof options?.transport?.stats !== 'function') {
    throw new ConfigError(
      'transport',
      `transport ${options?.transport?.name ?? ''} has no stats(); lag cannot be measured`.replace('  ', ' '),
    );
  }
  nonNegative('maxLag', options.maxLag);
  if (options.failLag !== undefined) nonNegative('failLag', options.failLag);
  const stats = options.transport.stats.bind(options.transport);
  return {
    ...settings({ name: 'consumer-lag', critical: false }, options),
    async check(): Promise<CheckOutcome> {
      const targets =
        options.groups ??
        (options.subscriptions ?? []).flatMap((s) => s.topics.map((topic) => ({ topic, group: s.group })));
      const lags: Record<string, number> = {};
      let worst = 0;
      for (const { topic, group } of targets) {
        const s = await stats(topic, group);
        lags[`${group}@${topic}`] = s.lag;
        worst = Math.max(worst, s.lag);
      }
      let status: HealthStatus = 'healthy';
      if (options.failLag !== undefined && worst > options.failLag) status = 'unhealthy';
      else if (worst > options.maxLag) status = 'degraded';
      const message =
        status === 'healthy'
          ? undefined
          : `lag ${worst} over ${status === 'unhealthy' ? options.failLag : options.maxLag}`;
      return { status, ...(message ? { message } : {}), details: { lag: lags } };
    },
  };
}

export interface DeadLetterGrowthOptions extends CheckSettings {
  /** Anything with `count()`, e.g. `herald.deadLetters` or a DeadLetterStore. */
  readonly deadLetters: { count(): Promise<number> };
  /** Growth is measured against the oldest sample inside this window. Default 60 000 ms. */
  readonly windowMs?: number;
  /** More new dead letters than this within the window degrades the check. Default 0. */
  readonly maxGrowth?: number;
  /** Status when over the limit. Default `degraded`. */
  readonly over?: 'degraded' | 'unhealthy';
}

/**
 * Dead-letter queue growth: how many messages were dead-lettered within the window (count now
 * minus the oldest sample in the window). A stable, non-empty DLQ is healthy: it is growth that
 * means something is failing now. Samples are taken whenever the check runs.
 */
export function deadLetterGrowthCheck(options: DeadLetterGrowthOptions): HealthCheck {
  if (typeof options?.deadLetters?.count !== 'function')
    throw new ConfigError('deadLetters', 'must have a count() method, e.g. herald.deadLetters');
  const windowMs = options.windowMs ?? 60_000;
  const maxGrowth = options.maxGrowth ?? 0;
  nonNegative('windowMs', windowMs);
  nonNegative('maxGrowth', maxGrowth);
  const samples: { at: number; count: number }[] = [];
  return {
    ...settings({ name: 'dead-letters', critical: false }, options),
    async check(): Promise<CheckOutcome> {
      const count = await options.deadLetters.count();
      const now = performance.now();
      samples.push({ at: now, count });
      // Keep the newest sample at or before the window start as the baseline; drop older ones.
      while (samples.length > 1 && samples[1]!.at <= now - windowMs) samples.shift();
      const growth = count - samples[0]!.count;
      const details = { count, growth, windowMs };
      if (growth > maxGrowth) {
        return {
          status: options.over ?? 'degraded',
          message: `${growth} new dead letters within ${windowMs} ms (limit ${maxGrowth})`,
          details,
        };
      }
      return { details };
    },
  };
}

/** The states a circuit breaker reports. */
export type BreakerState = 'open' | 'closed' | 'half-open';

export interface BreakerCheckOptions extends CheckSettings {
  readonly name: string;
  /** Any object with a `state` property (e.g. a herald/resilience CircuitBreaker) or a function returning the state. */
  readonly breaker: { readonly state: BreakerState | string } | (() => BreakerState | string);
}

/**
 * A circuit breaker: open → unhealthy, half-open → degraded, closed → healthy. Non-critical by
 * default, since the breaker exists so the service keeps working without that dependency.
 */
export function breakerCheck(options: BreakerCheckOptions): HealthCheck {
  const breaker = options?.breaker;
  if (
    typeof breaker !== 'function' &&
    (typeof breaker !== 'object' || breaker === null || !('state' in breaker))
  ) {
    throw new ConfigError(
      'breaker',
      'must be an object with a state property or a function returning the state',
    );
  }
  const read = typeof breaker === 'function' ? breaker : () => breaker.state;
  return {
    ...settings({ name: options.name, critical: false }, options),
    async check(): Promise<CheckOutcome> {
      const state = read();
      switch (state) {
        case 'closed':
          return { details: { state } };
        case 'half-open':
          return {
            status: 'degraded',
            message: 'circuit half-open: probing the dependency',
            details: { state },
          };
        case 'open':
          return {
            status: 'unhealthy',
            message: 'circuit open: calls are short-circuited',
            details: { state },
          };
        default:
          throw new Error(
            `unknown breaker state ${JSON.stringify(state)}; expected open, closed or half-open`,
          );
      }
    },
  };
}

function nonNegative(field: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new ConfigError(field, `must be a number >= 0, got ${String(value)}`);
}
