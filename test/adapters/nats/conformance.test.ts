/**
 * The shared conformance suites against NATS JetStream. The transport suite runs on a private
 * nats-server (its restart case restarts the broker); the store suite on the shared server under
 * a fresh namespace per store.
 */
import { after, before, describe } from 'node:test';
import { nats, natsStores, type NatsStores } from '../../../src/adapters/nats/index.js';
import { runStoreSuite, runTransportSuite } from '../../../src/testing/index.js';
import { needs } from '../../support/services.js';
import { dropNamespace, OwnNats, SHARED_URL, uniqueNamespace } from './harness.js';

const ownServer =
  OwnNats.available() || process.env.CI === 'true' ? {} : { skip: 'nats-server binary not found' };

describe('nats transport conformance', ownServer, () => {
  let server: OwnNats;
  before(async () => {
    server = await OwnNats.start();
  });
  after(() => server.stop());
  runTransportSuite('nats', {
    create: async () =>
      nats({ servers: server.url, namespace: 'conformance', ackWaitMs: 2_000, onError: () => undefined }),
    restart: () => server.restart(),
  });
});

describe('nats store conformance', await needs('nats'), () => {
  const namespaces: string[] = [];
  const sets: NatsStores[] = [];
  const fresh = (): NatsStores => {
    const namespace = uniqueNamespace('stores');
    namespaces.push(namespace);
    const set = natsStores({ servers: SHARED_URL, namespace });
    sets.push(set);
    return set;
  };
  after(async () => {
    await Promise.all(sets.map((s) => s.close()));
    for (const ns of namespaces) await dropNamespace(SHARED_URL, ns);
  });
  runStoreSuite('nats', {
    deadLetters: async () => fresh().deadLetters,
    idempotency: async () => fresh().idempotency,
    events: async () => fresh().events,
  });
});
