import type { Cluster, Redis } from 'ioredis';
import { redisDriver } from './driver.js';
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
    this.onError =
      options.onError ??
      ((error, context) =>
        process.emitWarning(`${name} (${context}): ${error.message}`, 'HeraldRedisWarning'));
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
    try {
      await this.client.quit();
    } catch {
      this.client.disconnect();
    }
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
