/**
 * The transport conformance suite once more, with read-ahead on (`bufferSize`, ADR 0304) so that
 * buffered entries and followers (ADR 0305) go through every case: order, retries, crashes, restart.
 */
import { before, describe } from 'node:test';
import { redis } from '../../../src/adapters/redis/index.js';
import { runTransportSuite } from '../../../src/testing/index.js';
import { OwnRedis, uniquePrefix } from './harness.js';

const ownServer =
  OwnRedis.available() || process.env.CI === 'true' ? {} : { skip: 'redis-server binary not found' };

describe('redis transport conformance with read-ahead', ownServer, () => {
  let server: OwnRedis;
  const prefix = uniquePrefix('conformance-ahead');
  before(async () => {
    server = await OwnRedis.start();
  });
  runTransportSuite('redis (bufferSize 64)', {
    create: async () =>
      redis({
        url: server.url,
        prefix,
        claimIdleMs: 2_000,
        blockMs: 500,
        bufferSize: 64,
        onError: () => undefined,
      }),
    restart: () => server.restart(),
    cleanup: () => server.stop(),
  });
});
