import { SqliteDeadLetterStore } from './dead-letter-store.js';
import { SqliteEventStore } from './event-store.js';
import { SqliteIdempotencyStore } from './idempotency-store.js';
import { resolveConnectionOptions, type SqliteConnectionOptions } from './options.js';

/** The three stores on one file, sharing one connection (and with the transport, when it uses the same file). */
export interface SqliteStores {
  readonly deadLetters: SqliteDeadLetterStore;
  readonly idempotency: SqliteIdempotencyStore;
  readonly events: SqliteEventStore;
  /** Closes all three. */
  close(): Promise<void>;
}

/**
 * Creates the dead-letter, idempotency and event stores on one SQLite file:
 * `createHerald({ transport: sqlite({ path }), stores: sqliteStores({ path }) })`.
 */
export function sqliteStores(options: SqliteConnectionOptions): SqliteStores {
  resolveConnectionOptions(options); // fail on bad options before opening anything
  const deadLetters = new SqliteDeadLetterStore(options);
  try {
    const idempotency = new SqliteIdempotencyStore(options);
    const events = new SqliteEventStore(options);
    return {
      deadLetters,
      idempotency,
      events,
      close: async () => {
        await Promise.all([deadLetters.close(), idempotency.close(), events.close()]);
      },
    };
  } catch (err) {
    void deadLetters.close();
    throw err;
  }
}
