import { Connections, type RedisHealth, type RedisStatus } from '../connection.js';
import { validateConnectionOptions, type RedisConnectionOptions } from '../options.js';
import { RedisDeadLetterStore } from './dead-letter-store.js';
import { RedisEventStore } from './event-store.js';
import { RedisIdempotencyStore } from './idempotency-store.js';

export { RedisDeadLetterStore, RedisEventStore, RedisIdempotencyStore };

/** The Redis stores, sharing one connection. */
export interface RedisStores {
  readonly deadLetters: RedisDeadLetterStore & { close(): Promise<void> };
  readonly idempotency: RedisIdempotencyStore & { close(): Promise<void> };
  readonly events: RedisEventStore & { close(): Promise<void> };
  status(): RedisStatus;
  health(timeoutMs?: number): Promise<RedisHealth>;
  /** Closes the shared connection (also happens once each store has been closed). */
  close(): Promise<void>;
}

/**
 * Creates the dead-letter, idempotency and event stores on one Redis connection. Keys:
 * `{<prefix>:dlq}:*`, `<prefix>:idem:<key>`, `{<prefix>:events}:*`; see docs/adapters/redis.md.
 */
export function redisStores(options: RedisConnectionOptions = {}): RedisStores {
  const prefix = validateConnectionOptions(options);
  const connections = new Connections(options, 'herald redis stores');
  const client = connections.client;
  let open = 3;
  const closeOne = async (): Promise<void> => {
    if (--open === 0) await connections.close();
  };
  const closable = <S extends object>(store: S): S & { close(): Promise<void> } => {
    let closed = false;
    return Object.assign(store, {
      close: async () => {
        if (closed) return;
        closed = true;
        await closeOne();
      },
    });
  };
  return {
    deadLetters: closable(new RedisDeadLetterStore(client, `{${prefix}:dlq}`)),
    // No hash tag: idempotency keys are independent, so they spread over the cluster's slots.
    idempotency: closable(new RedisIdempotencyStore(client, `${prefix}:idem:`)),
    events: closable(new RedisEventStore(client, `{${prefix}:events}`)),
    status: () => connections.status(),
    health: (timeoutMs) => connections.health(timeoutMs),
    close: () => connections.close(),
  };
}
