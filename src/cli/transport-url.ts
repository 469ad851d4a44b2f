import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseBackendUrl } from '../config/index.js';
import { ConfigError } from '../core/errors.js';
import type { DeadLetterStore } from '../store/dead-letter-store.js';
import type { IdempotencyStore } from '../store/idempotency-store.js';
import { MemoryDeadLetterStore, MemoryIdempotencyStore } from '../store/memory/index.js';
import { MemoryTransport } from '../transport/memory.js';
import type { Transport } from '../transport/transport.js';

/** The default transport: the embedded SQLite broker, so `herald dlq list` sees what `herald demo` left. */
export const DEFAULT_TRANSPORT_URL = 'sqlite://.herald/events.db';

/** A parsed `--transport` URL. */
export type TransportTarget =
  | { readonly kind: 'memory'; readonly url: string }
  | { readonly kind: 'sqlite'; readonly url: string; readonly path: string }
  | { readonly kind: 'redis'; readonly url: string; readonly redisUrl: string; readonly prefix?: string };

/**
 * Parses `memory://`, `sqlite://<path>` (relative or absolute: `sqlite:///tmp/x.db`) or
 * `redis://host:port[/db][?prefix=p]` (also `rediss://`; `prefix` is the key prefix, CLI only).
 * Throws ConfigError('transport') otherwise.
 */
export function parseTransportUrl(url: string): TransportTarget {
  const trimmed = url.trim();
  // Parsing is shared with herald.yaml's transport.url (src/config), so both accept the same URLs.
  const parsed = parseBackendUrl(trimmed.replace(/\?prefix=[^&]*$/, ''));
  if ('error' in parsed) throw new ConfigError('transport', `${parsed.error}, got ${JSON.stringify(url)}`);
  switch (parsed.kind) {
    case 'memory':
      return { kind: 'memory', url: trimmed };
    case 'sqlite':
      return { kind: 'sqlite', url: trimmed, path: parsed.path };
    case 'redis': {
      const prefix = /\?prefix=([^&]*)$/.exec(trimmed)?.[1];
      return {
        kind: 'redis',
        url: trimmed,
        redisUrl: parsed.url,
        ...(prefix ? { prefix: decodeURIComponent(prefix) } : {}),
      };
    }
  }
}

/** A transport and the stores that belong with it, opened from one URL. */
export interface OpenedTransport {
  readonly target: TransportTarget;
  readonly transport: Transport;
  readonly deadLetters: DeadLetterStore;
  readonly idempotency: IdempotencyStore;
  /** Closes the transport and the stores once. */
  close(): Promise<void>;
}

/** Shape of `herald/redis` as the CLI uses it; loaded lazily so the core never needs ioredis. */
interface RedisModule {
  redis(options: { url: string; prefix?: string }): Transport;
  redisStores(options: { url: string; prefix?: string }): {
    deadLetters: DeadLetterStore;
    idempotency: IdempotencyStore;
    close(): Promise<void>;
  };
}

/**
 * Opens the transport and stores named by a URL. Drivers are imported dynamically, only for the
 * scheme asked for, so `memory://` works without better-sqlite3 or ioredis installed.
 */
export async function openTransport(
  target: TransportTarget,
  overrides: { prefix?: string } = {},
): Promise<OpenedTransport> {
  if (target.kind === 'memory') {
    const transport = new MemoryTransport();
    return {
      target,
      transport,
      deadLetters: new MemoryDeadLetterStore(),
      idempotency: new MemoryIdempotencyStore(),
      close: once(() => transport.close()),
    };
  }
  if (target.kind === 'sqlite') {
    const path = resolve(target.path);
    mkdirSync(dirname(path), { recursive: true });
    const mod = await import('../adapters/sqlite/index.js');
    return withStores(target, mod.sqlite({ path }), mod.sqliteStores({ path }));
  }
  const specifier = '../adapters/redis/index.js';
  let mod: RedisModule;
  try {
    mod = (await import(specifier)) as RedisModule;
  } catch (err) {
    throw new ConfigError(
      'transport',
      `the Redis adapter could not be loaded (is ioredis installed?): ${(err as Error).message}`,
    );
  }
  const prefix = overrides.prefix ?? target.prefix;
  const options = { url: target.redisUrl, ...(prefix ? { prefix } : {}) };
  return withStores(target, mod.redis(options), mod.redisStores(options));
}

/** A broker's transport with its stores, closed together once. */
function withStores(
  target: OpenedTransport['target'],
  transport: OpenedTransport['transport'],
  stores: Pick<OpenedTransport, 'deadLetters' | 'idempotency'> & { close(): Promise<void> },
): OpenedTransport {
  return {
    target,
    transport,
    deadLetters: stores.deadLetters,
    idempotency: stores.idempotency,
    close: once(async () => {
      await transport.close();
      await stores.close();
    }),
  };
}

function once(fn: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= fn());
}
