/**
 * `herald/nats`: NATS support. The only folder that imports `@nats-io/*`.
 * For now: a health check; the JetStream transport is not available yet.
 */
export { natsHealthCheck, type NatsHealthCheckOptions } from './health.js';
