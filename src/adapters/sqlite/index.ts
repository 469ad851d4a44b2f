/**
 * `herald/sqlite`: the embedded durable broker and stores on one SQLite file (better-sqlite3).
 *
 * @example
 * import { sqlite, sqliteStores } from 'herald/sqlite';
 * const herald = await createHerald({
 *   service: 'billing',
 *   transport: sqlite({ path: '.herald/events.db' }),
 *   stores: sqliteStores({ path: '.herald/events.db' }),
 * });
 */
export { SqliteTransport, sqlite } from './transport.js';
export { sqliteStores, type SqliteStores } from './stores.js';
export { SqliteDeadLetterStore } from './dead-letter-store.js';
export { SqliteIdempotencyStore } from './idempotency-store.js';
export { SqliteEventStore } from './event-store.js';
export type { SqliteConnectionOptions, SqliteRetentionOptions, SqliteTransportOptions } from './options.js';
export type { SqliteTransportCounters } from './leases.js';
export { SCHEMA_VERSION } from './schema.js';
export {
  SqliteBusyError,
  SqliteCannotOpenError,
  SqliteDatabaseError,
  SqliteForeignDatabaseError,
  SqliteNotADatabaseError,
  SqliteOperationError,
  SqliteReadOnlyError,
  SqliteSchemaVersionError,
} from './errors.js';
export { sqliteHealthCheck, type SqliteHealthCheckOptions } from './health.js';
export { SqliteSagaStore, type SqliteSagaTx } from './saga-store.js';
export { SqliteOutbox, type SqliteOutboxOptions, type SqliteOutboxSourceOptions } from './outbox.js';
