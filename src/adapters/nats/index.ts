/**
 * `herald/nats`: the NATS JetStream transport, the JetStream stores and a health check. The only
 * folder that imports `@nats-io/*`.
 */
export { nats, NatsTransport, NatsPublishError } from './transport.js';
export { NatsConnectError, type NatsStatus } from './connection.js';
export { Names } from './names.js';
export type { NatsConnectionOptions, NatsStreamOptions, NatsTransportOptions } from './options.js';
export { natsHealthCheck, type NatsHealthCheckOptions } from './health.js';
export { natsStores, NatsDeadLetterStore, NatsEventStore, NatsIdempotencyStore } from './stores/index.js';
export type { NatsStores, NatsStoresOptions } from './stores/index.js';
