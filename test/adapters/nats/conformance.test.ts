/**
 * The shared conformance suites against NATS JetStream. The transport suite runs on a private
 * nats-server (its restart case restarts the broker); the store suite on the shared server under
 * a fresh namespace per store.
 */
import { after, before, describe } from 'node:test';
import { nats } from '../../../src/adapters/nats/index.js';
import { runTransportSuite } from '../../../src/testing/index.js';
import { OwnNats } from './harness.js';

const ownServer = OwnNats.available() || process.env.CI === 'true' ? {} : { skip: 'nats-server binary not found' };

describe('nats transport conformance', ownServer, () => {
  let server: OwnNats;
  before(async () => {
    server = await OwnNats.start();
  });
  after(() => server.stop());
  runTransportSuite('nats', {
    create: async () => nats({ servers: server.url, namespace: 'conformance', ackWaitMs: 2_000, onError: () => undefined }),
    restart: () => server.restart(),
  });
});
