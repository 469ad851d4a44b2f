/**
 * `herald/postgres`: the PostgreSQL transport, stores, saga store and transactional outbox (driver
 * `pg`, an optional peer). The only folder that imports `pg`.
 *
 * @example
 * import { postgres, postgresStores } from 'herald/postgres';
 * const url = 'postgres://app@db:5432/app';
 * const herald = await createHerald({
 *   service: 'billing',
 *   transport: await postgres({ connectionString: url }),
 *   stores: await postgresStores({ connectionString: url }),
 * });
 */
export { PostgresTransport, postgres } from './transport.js';
export { postgresStores, type PostgresStores } from './stores.js';
export { PostgresDeadLetterStore, type PostgresDeadLetterFilter } from './dead-letter-store.js';
export { PostgresIdempotencyStore, type Queryable } from './idempotency-store.js';
export { PostgresEventStore } from './event-store.js';
export { PostgresSagaStore, type PostgresSagaTx } from './saga-store.js';
export type {
  PostgresConnectionOptions,
  PostgresRetentionOptions,
  PostgresTransportOptions,
} from './options.js';
export type { PostgresConnection } from './connection.js';
export { SCHEMA_VERSION } from './schema.js';
export { PostgresSchemaVersionError } from './errors.js';
export { UNDECODABLE_CONTENT_TYPE } from './codec.js';
export { postgresHealthCheck, type PostgresHealthCheckOptions } from './health.js';
export {
  PostgresOutbox,
  type PgQueryable,
  type PostgresOutboxOptions,
  type PostgresOutboxWriter,
} from './outbox.js';
