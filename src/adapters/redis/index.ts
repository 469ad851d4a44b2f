/**
 * `herald/redis`: the Redis Streams transport and the Redis stores. The only module that imports ioredis.
 */
export { redis, RedisTransport, RedisPublishError } from './transport.js';
export type { RedisConnectionOptions, RedisTransportOptions, RedisTrimOptions } from './options.js';
export type { RedisStatus, RedisHealth } from './connection.js';
export { redisStores, RedisDeadLetterStore, RedisEventStore, RedisIdempotencyStore } from './stores/index.js';
export type { RedisStores } from './stores/index.js';
export * from './rate-limit.js';
export { redisHealthCheck, type RedisHealthCheckOptions } from './health.js';
export { RedisSagaStore, redisSagaStore, type RedisSagaTx } from './stores/saga-store.js';
