import { Connections, type RedisClient, type RedisHealth, type RedisStatus } from '../connection.js';
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
  /** Closes the shared connection (also happens once every store that used it has been closed). */
  close(): Promise<void>;
}

/**
 * Creates the dead-letter, idempotency and event stores on one Redis connection. Keys:
 * `{<prefix>:dlq}:*`, `<prefix>:idem:<key>`, `{<prefix>:events}:*`; see docs/adapters/redis.md.
 *
 * The connection opens when a store is first used, and closes once every store that used it is
 * closed: pass only some of the stores to Herald and the others hold nothing, so `herald.stop()`
 * lets the process exit.
 */
export function redisStores(options: RedisConnectionOptions = {}): RedisStores {
  const prefix = validateConnectionOptions(options);
  const shared = new SharedConnection(options);
  const closable = <S extends object>(make: (client: RedisClient) => S): S & { close(): Promise<void> } => {
    const user = {};
    let closed = false;
    return Object.assign(make(shared.clientFor(user)), {
      close: async () => {
        if (closed) return;
        closed = true;
        await shared.release(user);
      },
    });
  };
  return {
    deadLetters: closable((c) => new RedisDeadLetterStore(c, `{${prefix}:dlq}`)),
    // No hash tag: idempotency keys are independent, so they spread over the cluster's slots.
    idempotency: closable((c) => new RedisIdempotencyStore(c, `${prefix}:idem:`)),
    events: closable((c) => new RedisEventStore(c, `{${prefix}:events}`)),
    status: () => shared.status(),
    health: (timeoutMs) => shared.health(timeoutMs),
    close: () => shared.close(),
  };
}

/**
 * One connection shared by the stores, opened on first use. Each store sees it through a proxy that
 * counts the store as a user from its first command; the connection closes when the last user is
 * closed. Lua commands defined before the connection exists are defined on it when it opens.
 */
class SharedConnection {
  private connections: Connections | undefined;
  private readonly users = new Set<object>();
  private readonly commands = new Map<string, { lua: string; numberOfKeys?: number }>();

  constructor(private readonly options: RedisConnectionOptions) {}

  clientFor(user: object): RedisClient {
    const acquire = (): RedisClient => {
      this.users.add(user);
      return this.open().client;
    };
    return new Proxy({} as RedisClient, {
      get: (_, prop) => {
        if (prop === 'defineCommand')
          return (name: string, definition: { lua: string; numberOfKeys?: number }) => {
            this.commands.set(name, definition);
            this.connections?.client.defineCommand(name, definition);
          };
        if (typeof prop === 'string' && this.commands.has(prop))
          return (...args: unknown[]) =>
            (acquire() as unknown as Record<string, (...a: unknown[]) => unknown>)[prop]!(...args);
        const client = acquire();
        const value = (client as unknown as Record<string | symbol, unknown>)[prop];
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(client) : value;
      },
    });
  }

  async release(user: object): Promise<void> {
    if (!this.users.delete(user) || this.users.size > 0) return;
    await this.close();
  }

  status(): RedisStatus {
    return this.connections?.status() ?? { state: 'closed', errors: 0 };
  }

  health(timeoutMs?: number): Promise<RedisHealth> {
    return this.open().health(timeoutMs);
  }

  async close(): Promise<void> {
    const connections = this.connections;
    this.connections = undefined;
    this.users.clear();
    await connections?.close();
  }

  private open(): Connections {
    if (!this.connections) {
      this.connections = new Connections(this.options, 'herald redis stores');
      for (const [name, definition] of this.commands) this.connections.client.defineCommand(name, definition);
    }
    return this.connections;
  }
}
