import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { ConfigError } from '../../core/errors.js';

/** How to reach Redis: exactly one of `url`, `redis`, `cluster` or `client` (default: `redis://127.0.0.1:6379`). */
export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://...` for TLS. */
  readonly url?: string;
  /** ioredis options for one node (host, port, password, tls, ...). */
  readonly redis?: RedisOptions;
  /** Redis Cluster: startup nodes and ioredis cluster options. Keys carry hash tags, see docs/adapters/redis.md. */
  readonly cluster?: { readonly nodes: readonly ClusterNode[]; readonly options?: ClusterOptions };
  /**
   * A client you own. Herald duplicates it for its own connections and never closes it, so one
   * client can be shared by the transport and the stores.
   */
  readonly client?: Redis | Cluster;
  /** Prefix of every key Herald writes. Default `herald`. No `{`, `}` or whitespace. */
  readonly prefix?: string;
  /**
   * Called with every connection or command error (a Redis restart, a failed background trim, ...).
   * Default: `process.emitWarning`, so nothing fails silently.
   */
  readonly onError?: (error: Error, context: string) => void;
}

/** Stream trimming. Entries a consumer group has not settled are never trimmed, whatever the setting. */
export interface RedisTrimOptions {
  /** Keep about this many entries per topic stream (the oldest settled ones go first). */
  readonly maxLen?: number;
  /** Drop settled entries older than this many milliseconds. */
  readonly minIdAgeMs?: number;
  /** How often a publishing transport trims a topic it publishes to. Default 1000 ms. */
  readonly intervalMs?: number;
}

export interface RedisTransportOptions extends RedisConnectionOptions {
  /**
   * A delivery whose consumer has not renewed its lease for this long is reclaimed (XAUTOCLAIM)
   * by another member of the group. Live consumers renew the leases of their in-flight
   * deliveries, so this bounds how long a crashed consumer's messages wait, not how long a
   * handler may run. Default 30 000.
   */
  readonly claimIdleMs?: number;
  /** Longest a consumer blocks waiting for new entries before checking again. Default 2000. */
  readonly blockMs?: number;
  /** Most entries fetched per round trip (the COUNT of XREADGROUP, capped by `prefetch + bufferSize`). Default 500. */
  readonly batchSize?: number;
  /**
   * Most entries a subscription fetches ahead of its free handler slots (`prefetch`) and keeps in
   * process memory until a slot frees. They are leased to the subscription and renewed like
   * in-flight ones; they go back to the group when the subscription closes and are reclaimed by
   * other members if the process dies. The read-ahead grows towards this bound only while the
   * handlers keep up (the buffer's upper half reaches them within 125 ms), shrinks once a half takes
   * over 250 ms (ADR 0314), and shrinks while fetches come back mostly as later entries of keys this
   * consumer already holds (followers, which cost Redis more than the saved round trips: ADR 0312).
   * 0 fetches only for free slots (spreads a small backlog evenly over many slow members). Memory:
   * up to `prefetch + bufferSize` entries per subscription. Default 64 for a subscription with
   * ordering by key and 512 for one with ordering `none`, which has no followers to fear and whose
   * Redis cost per message falls with the batch (ADR 0313).
   */
  readonly bufferSize?: number;
  /** Stream trimming; off by default (streams grow until trimmed). */
  readonly trim?: RedisTrimOptions;
}

export interface ResolvedTransportOptions {
  readonly prefix: string;
  readonly claimIdleMs: number;
  readonly blockMs: number;
  readonly batchSize: number;
  /** Undefined: each subscription takes its ordering's default (see the consumer). */
  readonly bufferSize: number | undefined;
  readonly trim:
    { readonly maxLen?: number; readonly minIdAgeMs?: number; readonly intervalMs: number } | undefined;
}

const PREFIX_PATTERN = /^[^{}\s]+$/;

function integer(field: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

/** Checks the connection options shared by the transport and the stores; returns the key prefix. */
export function validateConnectionOptions(options: RedisConnectionOptions): string {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const given = (['url', 'redis', 'cluster', 'client'] as const).filter((k) => options[k] !== undefined);
  if (given.length > 1)
    throw new ConfigError(
      given[1]!,
      `give only one of url, redis, cluster, client (got ${given.join(', ')})`,
    );
  if (options.url !== undefined) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new ConfigError('url', `is not a URL: ${JSON.stringify(options.url)}`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new ConfigError('url', `must start with redis:// or rediss://, got ${url.protocol}//`);
    }
  }
  if (
    options.cluster !== undefined &&
    (!Array.isArray(options.cluster.nodes) || options.cluster.nodes.length === 0)
  ) {
    throw new ConfigError('cluster.nodes', 'must list at least one startup node');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new ConfigError('onError', 'must be a function');
  }
  const prefix = options.prefix ?? 'herald';
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(
      'prefix',
      `must be a non-empty string without braces or whitespace, got ${JSON.stringify(prefix)}`,
    );
  }
  return prefix;
}

/** Validates transport options and fills in defaults; throws ConfigError naming the field. */
export function resolveTransportOptions(options: RedisTransportOptions): ResolvedTransportOptions {
  const prefix = validateConnectionOptions(options);
  const claimIdleMs = integer('claimIdleMs', options.claimIdleMs, 10, 30_000);
  const blockMs = integer('blockMs', options.blockMs, 1, 2_000);
  const batchSize = integer('batchSize', options.batchSize, 1, 500);
  const bufferSize =
    options.bufferSize === undefined ? undefined : integer('bufferSize', options.bufferSize, 0, 0);
  if (bufferSize !== undefined && bufferSize > 100_000)
    throw new ConfigError('bufferSize', `must be at most 100000, got ${bufferSize}`);
  let trim: ResolvedTransportOptions['trim'];
  if (options.trim !== undefined) {
    if (options.trim === null || typeof options.trim !== 'object')
      throw new ConfigError('trim', 'must be an object');
    const maxLen =
      options.trim.maxLen === undefined ? undefined : integer('trim.maxLen', options.trim.maxLen, 1, 0);
    const minIdAgeMs =
      options.trim.minIdAgeMs === undefined
        ? undefined
        : integer('trim.minIdAgeMs', options.trim.minIdAgeMs, 0, 0);
    if (maxLen === undefined && minIdAgeMs === undefined) {
      throw new ConfigError('trim', 'set trim.maxLen and/or trim.minIdAgeMs, or leave trim out');
    }
    trim = { maxLen, minIdAgeMs, intervalMs: integer('trim.intervalMs', options.trim.intervalMs, 10, 1_000) };
  }
  return { prefix, claimIdleMs, blockMs, batchSize, bufferSize, trim };
}

/** Rejects topic names that would break the `{topic}` hash tag of the topic's keys. */
export function validateTopicName(topic: string): void {
  if (/[{}]/.test(topic))
    throw new ConfigError(
      'topic',
      `must not contain braces (used for cluster hash tags), got ${JSON.stringify(topic)}`,
    );
}
