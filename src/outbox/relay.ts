import { ConfigError, toError } from '../core/errors.js';
import type { HealthCheck } from '../health/types.js';
import { ExponentialBackoff, type BackoffOptions } from '../resilience/retry/backoff.js';
import type { Message, Transport } from '../transport/transport.js';
import type { OutboxLag, OutboxRow, OutboxSource } from './source.js';

export interface OutboxRelayOptions {
  /** The outbox to read (`PostgresOutbox.source()`, `SqliteOutbox.source()`). */
  readonly source: OutboxSource;
  /** Where events go: any Herald transport. */
  readonly transport: Transport;
  /** Rows read and published per round. Default 500. */
  readonly batchSize?: number;
  /**
   * Longest wait for new rows when the outbox is empty. PostgreSQL wakes the relay with NOTIFY on
   * every commit, so this is only a safety net there; SQLite polls at this interval. Default 1000.
   */
  readonly pollIntervalMs?: number;
  /** How often a standby relay tries to take over. Default 1000. */
  readonly standbyIntervalMs?: number;
  /** Backoff between failed publishes (the same batch is retried, in order). Default 100 ms doubling to 10 s, full jitter. */
  readonly backoff?: BackoffOptions;
  /** Sent rows are deleted after this long. Default 3 600 000 (one hour). */
  readonly keepSentMs?: number;
  /** How often the lag is measured and reported to `onLag`. Default 5000. */
  readonly lagIntervalMs?: number;
  /** Metric hook: the relay's lag, every `lagIntervalMs` while running. */
  readonly onLag?: (lag: OutboxLag) => void;
  /** Metric hook: rows forwarded by each successful round. */
  readonly onSent?: (count: number) => void;
  /** Errors of the relay loop (it keeps going). Default `process.emitWarning`. */
  readonly onError?: (error: Error) => void;
}

const KEYS = [
  'source',
  'transport',
  'batchSize',
  'pollIntervalMs',
  'standbyIntervalMs',
  'backoff',
  'keepSentMs',
  'lagIntervalMs',
  'onLag',
  'onSent',
  'onError',
];

export type RelayState = 'stopped' | 'standby' | 'relaying';

/**
 * Forwards committed outbox rows to a transport, in position order (so in order per aggregate),
 * marking them sent. At-least-once: a crash between publishing and marking re-sends the batch, and
 * consumers drop the repeat by event id (the idempotency middleware). One relay of an outbox is
 * active at a time; others stand by and take over when it stops or dies. See docs/outbox.md.
 */
export class OutboxRelay {
  private readonly source: OutboxSource;
  private readonly transport: Transport;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly standbyIntervalMs: number;
  private readonly keepSentMs: number;
  private readonly lagIntervalMs: number;
  private readonly backoff: ExponentialBackoff;
  private readonly onError: (error: Error) => void;
  private abort: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private lagTimer: NodeJS.Timeout | undefined;
  private current: RelayState = 'stopped';
  private lastLag: OutboxLag | undefined;
  private lastError: Error | undefined;
  private consecutiveFailures = 0;
  private sentTotal = 0;
  private lastCleanup = 0;

  constructor(private readonly options: OutboxRelayOptions) {
    if (typeof options !== 'object' || options === null)
      throw new ConfigError('options', 'must be an object like { source, transport }');
    for (const key of Object.keys(options))
      if (!KEYS.includes(key))
        throw new ConfigError(key, `is not an option; known options: ${KEYS.join(', ')}`);
    if (!options.source || typeof options.source.claim !== 'function')
      throw new ConfigError('source', 'must be an outbox source, e.g. outbox.source()');
    if (!options.transport || typeof options.transport.publish !== 'function')
      throw new ConfigError('transport', 'must be a Herald transport');
    this.source = options.source;
    this.transport = options.transport;
    this.batchSize = int('batchSize', options.batchSize, 500, 1);
    this.pollIntervalMs = int('pollIntervalMs', options.pollIntervalMs, 1000, 1);
    this.standbyIntervalMs = int('standbyIntervalMs', options.standbyIntervalMs, 1000, 1);
    this.keepSentMs = int('keepSentMs', options.keepSentMs, 3_600_000, 0);
    this.lagIntervalMs = int('lagIntervalMs', options.lagIntervalMs, 5000, 1);
    this.backoff = new ExponentialBackoff(options.backoff ?? {}, 'OutboxRelay.backoff');
    this.onError = options.onError ?? ((error) => process.emitWarning(error));
  }

  /** `relaying` (the active relay), `standby` (another relay is active) or `stopped`. */
  get state(): RelayState {
    return this.current;
  }

  /** Rows forwarded by this relay since it started. */
  get sent(): number {
    return this.sentTotal;
  }

  /** Starts the relay loop; returns at once. */
  start(): void {
    if (this.loop) return;
    const abort = new AbortController();
    this.abort = abort;
    this.current = 'standby';
    this.loop = this.run(abort.signal);
    this.lagTimer = setInterval(() => void this.measureLag(), this.lagIntervalMs);
    this.lagTimer.unref();
  }

  /** Finishes the round under way, gives up the relay role and stops. Rows not sent stay for the next relay. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.abort!.abort();
    clearInterval(this.lagTimer);
    await this.loop;
    this.loop = undefined;
    this.current = 'stopped';
    await this.source.release().catch((err: unknown) => this.onError(toError(err)));
  }

  /** Measures the lag now (also reported to `onLag` every `lagIntervalMs`). */
  async lag(): Promise<OutboxLag> {
    const lag = await this.source.lag();
    this.lastLag = lag;
    this.options.onLag?.(lag);
    return lag;
  }

  /**
   * A health check: unhealthy when the oldest unsent row is older than `maxLagMs` (no relay is
   * keeping up, whichever process should be running it) or when this relay keeps failing to
   * publish; degraded while it retries.
   */
  healthCheck(options: { maxLagMs?: number; name?: string; critical?: boolean } = {}): HealthCheck {
    const maxLagMs = int('maxLagMs', options.maxLagMs, 60_000, 1);
    return {
      name: options.name ?? 'outbox-relay',
      critical: options.critical ?? false,
      check: async () => {
        const lag = await this.source.lag();
        this.lastLag = lag;
        const details = {
          state: this.current,
          pending: lag.pending,
          oldestAgeMs: lag.oldestAgeMs,
          sent: this.sentTotal,
        };
        if (lag.oldestAgeMs > maxLagMs)
          return {
            status: 'unhealthy',
            message: `the oldest unsent outbox row is ${lag.oldestAgeMs} ms old (limit ${maxLagMs} ms)${this.lastError ? `; last error: ${this.lastError.message}` : ''}`,
            details,
          };
        if (this.consecutiveFailures > 0)
          return {
            status: 'degraded',
            message: `publishing failed ${this.consecutiveFailures} time(s) in a row: ${this.lastError?.message ?? ''}`,
            details,
          };
        return { status: 'healthy', details };
      },
    };
  }

  private async run(signal: AbortSignal): Promise<void> {
    let previousDelay = 0;
    while (!signal.aborted) {
      try {
        if (!(await this.source.acquire())) {
          this.current = 'standby';
          await sleep(this.standbyIntervalMs, signal);
          continue;
        }
        this.current = 'relaying';
        const rows = await this.source.claim(this.batchSize);
        if (rows.length === 0) {
          await this.maybeCleanup();
          await this.source.waitForWork(this.pollIntervalMs, signal);
          continue;
        }
        await this.forward(rows);
        await this.source.markSent(rows);
        this.sentTotal += rows.length;
        this.options.onSent?.(rows.length);
        this.consecutiveFailures = 0;
        previousDelay = 0;
      } catch (err) {
        // The same rows are read again next round: nothing is skipped, order is kept.
        this.consecutiveFailures++;
        this.lastError = toError(err);
        if (!signal.aborted) this.onError(this.lastError);
        previousDelay = this.backoff.delay(this.consecutiveFailures, previousDelay, Math.random);
        await sleep(previousDelay, signal);
      }
    }
  }

  /** Publishes rows in order, one transport call per run of rows with the same topic. */
  private async forward(rows: readonly OutboxRow[]): Promise<void> {
    let i = 0;
    while (i < rows.length) {
      const topic = rows[i]!.topic;
      const batch: Message[] = [];
      while (i < rows.length && rows[i]!.topic === topic) batch.push(rows[i++]!.message);
      await this.transport.publish(topic, batch);
    }
  }

  private async maybeCleanup(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCleanup < 60_000) return;
    this.lastCleanup = now;
    await this.source.cleanup(this.keepSentMs);
  }

  private async measureLag(): Promise<void> {
    try {
      await this.lag();
    } catch (err) {
      this.onError(toError(err));
    }
  }

  /** Last measured lag, if any. */
  get lastMeasuredLag(): OutboxLag | undefined {
    return this.lastLag;
  }
}

function int(field: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
