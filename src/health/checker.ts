import { ConfigError, HeraldError, toError } from '../core/errors.js';
import type { CheckOutcome, CheckResult, HealthCheck, HealthReport, HealthStatus } from './types.js';

const DEFAULT_TIMEOUT_MS = 2000;
const DEFAULT_CACHE_TTL_MS = 1000;

/** A check did not answer within its `timeoutMs`. */
export class HealthCheckTimeoutError extends HeraldError {
  constructor(name: string, timeoutMs: number) {
    super('HERALD_HEALTH_TIMEOUT', `health check ${name} did not answer within ${timeoutMs} ms`);
  }
}

interface Entry {
  readonly check: HealthCheck;
  readonly critical: boolean;
  readonly timeoutMs: number;
  readonly cacheTtlMs: number;
  last?: { result: CheckResult; at: number };
  running?: Promise<CheckResult>;
}

/**
 * Runs pluggable health checks concurrently, each with its own timeout, latency threshold and
 * result cache. Concurrent callers share one in-flight run per check, so a storm of probes costs
 * the dependencies at most one check per TTL.
 */
export class HealthChecker {
  private readonly entries = new Map<string, Entry>();

  constructor(checks: readonly HealthCheck[] = []) {
    for (const check of checks) this.add(check);
  }

  /** Registers a check; names must be unique. Returns a function that removes it. */
  add(check: HealthCheck): () => void {
    if (!check || typeof check.check !== 'function')
      throw new ConfigError('check', 'must be an object with a check(signal) function');
    if (typeof check.name !== 'string' || check.name.length === 0)
      throw new ConfigError('check.name', 'must be a non-empty string');
    if (this.entries.has(check.name))
      throw new ConfigError(
        'check.name',
        `a check named ${JSON.stringify(check.name)} is already registered`,
      );
    const timeoutMs = check.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const cacheTtlMs = check.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    positive(`${check.name}.timeoutMs`, timeoutMs, false);
    positive(`${check.name}.cacheTtlMs`, cacheTtlMs, true);
    if (check.degradedAfterMs !== undefined)
      positive(`${check.name}.degradedAfterMs`, check.degradedAfterMs, true);
    this.entries.set(check.name, { check, critical: check.critical ?? true, timeoutMs, cacheTtlMs });
    return () => {
      this.entries.delete(check.name);
    };
  }

  /** Names of the registered checks. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** Runs every check (or reuses fresh cached results) and aggregates them. Never rejects. */
  async check(): Promise<HealthReport> {
    const checks = await Promise.all([...this.entries.values()].map((e) => this.resultOf(e)));
    return { status: aggregate(checks), checks, timestamp: new Date().toISOString() };
  }

  /** Runs one check by name (cache applies). */
  async checkOne(name: string): Promise<CheckResult> {
    const entry = this.entries.get(name);
    if (!entry)
      throw new ConfigError(
        'name',
        `no health check named ${JSON.stringify(name)}; known: ${this.names.join(', ')}`,
      );
    return this.resultOf(entry);
  }

  private resultOf(entry: Entry): Promise<CheckResult> {
    if (entry.last && performance.now() - entry.last.at < entry.cacheTtlMs) {
      return Promise.resolve({ ...entry.last.result, cached: true });
    }
    if (entry.running) return entry.running;
    const running = this.run(entry).then((result) => {
      entry.last = { result, at: performance.now() };
      entry.running = undefined;
      return result;
    });
    entry.running = running;
    return running;
  }

  private async run(entry: Entry): Promise<CheckResult> {
    const { check, critical, timeoutMs } = entry;
    const controller = new AbortController();
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new HealthCheckTimeoutError(check.name, timeoutMs);
        controller.abort(err);
        reject(err);
      }, timeoutMs);
    });
    const base = { name: check.name, critical, cached: false };
    try {
      const outcome = (await Promise.race([
        Promise.resolve().then(() => check.check(controller.signal)),
        timeout,
      ])) as CheckOutcome | void;
      const latencyMs = round(performance.now() - started);
      let status: HealthStatus = outcome?.status ?? 'healthy';
      let error = outcome?.message;
      if (status === 'healthy' && check.degradedAfterMs !== undefined && latencyMs > check.degradedAfterMs) {
        status = 'degraded';
        error = `slow: answered in ${latencyMs} ms, threshold ${check.degradedAfterMs} ms`;
      }
      return {
        ...base,
        status,
        latencyMs,
        ...(error !== undefined ? { error } : {}),
        ...(outcome?.details ? { details: outcome.details } : {}),
        lastChecked: new Date().toISOString(),
      };
    } catch (thrown) {
      return {
        ...base,
        status: 'unhealthy',
        latencyMs: round(performance.now() - started),
        error: describe(thrown),
        lastChecked: new Date().toISOString(),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Critical failure → unhealthy; non-critical failure or any degraded check → degraded. */
export function aggregate(results: readonly Pick<CheckResult, 'status' | 'critical'>[]): HealthStatus {
  let status: HealthStatus = 'healthy';
  for (const r of results) {
    if (r.status === 'unhealthy' && r.critical) return 'unhealthy';
    if (r.status !== 'healthy') status = 'degraded';
  }
  return status;
}

function describe(thrown: unknown): string {
  const err = toError(thrown);
  // AggregateError (e.g. a refused dual-stack connect) carries the useful text in its parts.
  if (err.message === '' && err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map((e) => toError(e).message).join('; ');
  }
  return err.message || err.name;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

function positive(field: string, value: number, allowZero: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ConfigError(field, `must be a number ${allowZero ? '>= 0' : '> 0'}, got ${String(value)}`);
  }
}
