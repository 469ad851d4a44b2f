/**
 * The transport conformance suite once more, with read-ahead off (`bufferSize: 0`). The default
 * reads ahead (ADR 0312), so conformance.test.ts runs every case with buffered entries and followers
 * (ADR 0305); this run covers a consumer that fetches only for its free handler slots.
 */
import { before, describe } from 'node:test';
import { redis } from '../../../src/adapters/redis/index.js';
import { runTransportSuite } from '../../../src/testing/index.js';
import { OwnRedis, uniquePrefix } from './harness.js';

const ownServer =
  OwnRedis.available() || process.env.CI === 'true' ? {} : { skip: 'redis-server binary not found' };

describe('redis transport conformance without read-ahead', ownServer, () => {
  let server: OwnRedis;
  const prefix = uniquePrefix('conformance-no-ahead');
  before(async () => {
    server = await OwnRedis.start();
  });
  runTransportSuite('redis (bufferSize 0)', {
    create: async () =>
      redis({
        url: server.url,
        prefix,
        claimIdleMs: 2_000,
        blockMs: 500,
        bufferSize: 0,
        onError: () => undefined,
      }),
    restart: () => server.restart(),
    cleanup: () => server.stop(),
  });
});
