import { connect, type PostgresConnection } from './connection.js';
import { PostgresDeadLetterStore } from './dead-letter-store.js';
import { PostgresEventStore } from './event-store.js';
import { PostgresIdempotencyStore } from './idempotency-store.js';
import { resolveConnectionOptions, type PostgresConnectionOptions } from './options.js';

/** The three stores on one schema, sharing one pool. */
export interface PostgresStores {
  readonly deadLetters: PostgresDeadLetterStore;
  readonly idempotency: PostgresIdempotencyStore;
  readonly events: PostgresEventStore;
  /** The pool and schema they use (for transactions of yours, e.g. `idempotency.completeIn`). */
  readonly connection: PostgresConnection;
  /** Closes all three and the pool (unless the pool is yours). */
  close(): Promise<void>;
}

/**
 * Connects the dead-letter, idempotency and event stores on one schema:
 * `createHerald({ transport: await postgres({ connectionString }), stores: await postgresStores({ connectionString }) })`.
 */
export async function postgresStores(options: PostgresConnectionOptions): Promise<PostgresStores> {
  const connection = await connect(resolveConnectionOptions(options));
  const deadLetters = new PostgresDeadLetterStore(connection);
  const idempotency = new PostgresIdempotencyStore(connection);
  const events = new PostgresEventStore(connection);
  let closing: Promise<void> | undefined;
  return {
    deadLetters,
    idempotency,
    events,
    connection,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([deadLetters.close(), idempotency.close(), events.close()]);
        await connection.end();
      })()),
  };
}
