import { after } from 'node:test';
import { Redis } from 'ioredis';
import { redisSagaStore, type RedisSagaTx } from '../../src/adapters/redis/index.js';
import { runSagaStoreSuite } from '../../src/saga/testing.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';
import { needs } from '../support/services.js';

const prefix = uniquePrefix('saga');
const skip = await needs('redis');
const raw = new Redis(SHARED_URL, { lazyConnect: true });
after(async () => {
  raw.disconnect();
  await dropPrefix(SHARED_URL, prefix);
});
// Effect counters share the store's hash tag, as they must in a cluster.
const counters = `{${prefix}:saga}:counters`;

runSagaStoreSuite<RedisSagaTx>('redis', () => redisSagaStore({ url: SHARED_URL, prefix }), {
  ...skip,
  effects: {
    increment: (key) => (tx) => tx.call('HINCRBY', counters, key, 1),
    failing: () => () => {
      throw new Error('effect failed on purpose');
    },
    read: async (key) => Number((await raw.hget(counters, key)) ?? 0),
  },
});
