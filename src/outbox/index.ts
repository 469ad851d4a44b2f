/**
 * `herald/outbox`: the transport-agnostic half of the transactional outbox. An outbox table lives
 * in your database (`herald/postgres`'s `PostgresOutbox`, `herald/sqlite`'s `SqliteOutbox`); you
 * write events into it inside your own transaction, and an {@link OutboxRelay} forwards what was
 * committed to any transport, in order per aggregate. See docs/outbox.md.
 */
export { OutboxRelay, type OutboxRelayOptions, type RelayState } from './relay.js';
export type { OutboxLag, OutboxRow, OutboxSource } from './source.js';
export { outboxRecord, type OutboxEvent, type OutboxRecord } from './message.js';
