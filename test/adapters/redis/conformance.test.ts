/**
 * The shared conformance suites against Redis. The transport suite runs on a private redis-server
 * with AOF (`appendfsync always`) because its restart case restarts the broker; the store suite
 * runs on the shared Redis under a unique prefix per store.
 */
import { after, before, describe } from 'node:test';
import { redis, redisStores, type RedisStores } from '../../../src/adapters/redis/index.js';
import { runStoreSuite } from '../../../src/testing/index.js';
import { runTransportSuite } from '../../../src/testing/index.js';
import { needs } from '../../support/services.js';
import { dropPrefix, OwnRedis, SHARED_URL, uniquePrefix } from './harness.js';

const redisReachable = await needs('redis');
const ownServer =
  OwnRedis.available() || process.env.CI === 'true' ? {} : { skip: 'redis-server binary not found' };

describe('redis transport conformance', ownServer, () => {
  let server: OwnRedis;
  const prefix = uniquePrefix('conformance');
  before(async () => {
    server = await OwnRedis.start();
  });
  // Register the suite synchronously; the server exists by the time its hooks and tests run.
  runTransportSuite('redis', {
    create: async () =>
      redis({ url: server.url, prefix, claimIdleMs: 2_000, blockMs: 500, onError: () => undefined }),
    restart: () => server.restart(),
    cleanup: () => server.stop(),
  });
});

describe('redis store conformance', redisReachable, () => {
  const prefixes: string[] = [];
  const sets: RedisStores[] = [];
  const fresh = (): RedisStores => {
    const prefix = uniquePrefix('stores');
    prefixes.push(prefix);
    const set = redisStores({ url: SHARED_URL, prefix });
    sets.push(set);
    return set;
  };
  after(async () => {
    await Promise.all(sets.map((s) => s.close()));
    for (const p of prefixes) await dropPrefix(SHARED_URL, p);
  });
  runStoreSuite('redis', {
    deadLetters: async () => fresh().deadLetters,
    idempotency: async () => fresh().idempotency,
    events: async () => fresh().events,
  });
});
