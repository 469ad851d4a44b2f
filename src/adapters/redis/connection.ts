import type { Cluster, Redis } from 'ioredis';
import { redisDriver } from './driver.js';
import { maskUrl } from '../../backends/registry.js';
import { toError } from '../../core/errors.js';
import type { RedisConnectionOptions } from './options.js';

export type RedisClient = Redis | Cluster;

/** Connection state as seen by `status()`. */
export interface RedisStatus {
  /** `ready`: commands flow; `connecting`/`reconnecting`: they queue (and fail after ioredis's retries); `closed`. */
  readonly state: 'ready' | 'connecting' | 'reconnecting' | 'closed';
  /** The most recent error reported through `onError`, if any. */
  readonly lastError?: { readonly message: string; readonly context: string; readonly at: number };
  /** Errors reported since the transport or store was created. */
  readonly errors: number;
}

/** Result of an active check (PING). */
export interface RedisHealth {
  readonly ok: boolean;
  readonly latencyMs?: number;
  readonly error?: string;
}

/**
 * The connections of one transport or store set: opens them, watches them and routes every error to
 * `onError`, so a Redis outage shows up in logs and health instead of disappearing.
 */
export class Connections {
  readonly client: RedisClient;
  private readonly extra = new Set<RedisClient>();
  private readonly onError: (error: Error, context: string) => void;
  private lastError: RedisStatus['lastError'];
  private errors = 0;
  private closed = false;

  constructor(
    private readonly options: RedisConnectionOptions,
    private readonly name: string,
  ) {
    this.onError = options.onError ?? rateLimitedWarning(name);
    this.client = this.watch(open(options), 'connection');
  }

  /** A further connection of its own (for blocking reads); closed with the rest. */
  duplicate(): RedisClient {
    const client = this.watch(duplicate(this.client), 'blocking connection');
    this.extra.add(client);
    return client;
  }

  /** Closes and forgets a connection made by `duplicate`. */
  drop(client: RedisClient): void {
    this.extra.delete(client);
    client.disconnect();
  }

  report(thrown: unknown, context: string): void {
    const error = toError(thrown);
    this.errors++;
    this.lastError = { message: error.message, context, at: Date.now() };
    try {
      this.onError(error, context);
    } catch {
      // A throwing error callback must not take the consumer loop down with it.
    }
  }

  status(): RedisStatus {
    const s = this.client.status;
    const state =
      this.closed || s === 'end'
        ? 'closed'
        : s === 'ready'
          ? 'ready'
          : s === 'reconnecting'
            ? 'reconnecting'
            : 'connecting';
    return { state, lastError: this.lastError, errors: this.errors };
  }

  async health(timeoutMs = 1000): Promise<RedisHealth> {
    if (this.closed) return { ok: false, error: `${this.name} is closed` };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.client.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no PING reply within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { ok: true, latencyMs: performance.now() - started };
    } catch (err) {
      return { ok: false, error: toError(err).message };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.extra) c.disconnect();
    this.extra.clear();
    // QUIT waits for the server; a stalled or unreachable one must not hold close() (and so
    // herald.stop()) forever, so after a short wait the socket is simply dropped.
    if (this.client.status !== 'ready') {
      this.client.disconnect(); // never connected, or reconnecting: nobody to say goodbye to
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const dropped = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, QUIT_WAIT_MS);
      timer.unref();
    });
    await Promise.race([this.client.quit().catch(() => undefined), dropped]);
    clearTimeout(timer);
    this.client.disconnect();
  }

  /** Drops every socket at once, without QUIT (the server may be stalled). */
  disconnectAll(): void {
    this.closed = true;
    for (const c of this.extra) c.disconnect();
    this.extra.clear();
    this.client.disconnect();
  }

  /** Where these connections go, password masked: for errors and logs. */
  describe(): string {
    const o = this.options;
    if (o.url) return maskUrl(o.url);
    if (o.redis) return `redis://${o.redis.host ?? '127.0.0.1'}:${o.redis.port ?? 6379}`;
    if (o.cluster)
      return `redis cluster ${o.cluster.nodes.map((n) => (typeof n === 'object' ? `${n.host}:${n.port}` : String(n))).join(',')}`;
    if (o.client) return 'redis (a client you own)';
    return 'redis://127.0.0.1:6379';
  }

  private watch<C extends RedisClient>(client: C, what: string): C {
    client.on('error', (err: unknown) => {
      if (!this.closed) this.report(err, what);
    });
    // A clean server shutdown closes the socket without an 'error'; a lost connection is news too.
    client.on('reconnecting', () => {
      if (!this.closed) this.report(new Error('connection lost; reconnecting'), what);
    });
    return client;
  }
}

/** How long close() waits for QUIT before dropping the socket. */
const QUIT_WAIT_MS = 1000;
/** At most one warning per context in this period; the next one says how many were left out. */
const WARNING_EVERY_MS = 10_000;

/**
 * The default error callback: `process.emitWarning`, at most once per context every 10 s. ioredis
 * reports every failed reconnect attempt; during an outage that would be a warning a second.
 */
function rateLimitedWarning(name: string): (error: Error, context: string) => void {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (error, context) => {
    const now = Date.now();
    const seen = last.get(context);
    if (seen && now - seen.at < WARNING_EVERY_MS) {
      seen.suppressed++;
      return;
    }
    const more = seen?.suppressed
      ? ` (${seen.suppressed} more like it in the last ${Math.round((now - seen.at) / 1000)} s)`
      : '';
    last.set(context, { at: now, suppressed: 0 });
    process.emitWarning(`${name} (${context}): ${error.message}${more}`, 'HeraldRedisWarning');
  };
}

function open(options: RedisConnectionOptions): RedisClient {
  if (options.client) return duplicate(options.client);
  const { Cluster, Redis } = redisDriver();
  if (options.cluster) return new Cluster([...options.cluster.nodes], options.cluster.options);
  if (options.redis) return new Redis(options.redis);
  return new Redis(options.url ?? 'redis://127.0.0.1:6379');
}

/** `duplicate` exists on both client kinds, but TypeScript cannot call it through the union. */
function duplicate(client: RedisClient): RedisClient {
  return (client as { duplicate(): RedisClient }).duplicate();
}
