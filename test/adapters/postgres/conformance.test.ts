/**
 * The conformance suites of herald/testing on PostgreSQL. The transport suite runs on a private
 * cluster (so its broker-restart case can restart it); the store suite on the shared server, one
 * schema per store.
 */
import { after, before } from 'node:test';
import type {
  PostgresDeadLetterStore,
  PostgresEventStore,
  PostgresIdempotencyStore,
} from '../../../src/adapters/postgres/index.js';
import {
  PostgresTransport,
  postgresStores,
  type PostgresStores,
} from '../../../src/adapters/postgres/index.js';
import { runStoreSuite, runTransportSuite } from '../../../src/testing/index.js';
import { dropSchemas, OwnPostgres, SHARED_URL, uniqueSchema } from './harness.js';

let server: OwnPostgres | undefined;
const own = OwnPostgres.available();
before(async () => {
  if (own) server = await OwnPostgres.start();
});
after(async () => {
  await server?.stop();
});

const transportSchema = uniqueSchema('conf');
runTransportSuite('postgres', {
  create: async () =>
    PostgresTransport.connect({
      connectionString: server?.url ?? SHARED_URL,
      schema: transportSchema,
      visibilityTimeoutMs: 5000,
      pollIntervalMs: 500,
      onError: () => undefined,
    }),
  ...(own ? { restart: () => server!.restart() } : {}),
  cleanup: async () => dropSchemas(server?.url ?? SHARED_URL, [transportSchema]),
});

const storeSchemas: string[] = [];
const opened: PostgresStores[] = [];
async function fresh(): Promise<PostgresStores> {
  const schema = uniqueSchema('store');
  storeSchemas.push(schema);
  const stores = await postgresStores({ connectionString: SHARED_URL, schema, poolSize: 2 });
  opened.push(stores);
  return stores;
}
/** One store of a fresh set, whose close ends the whole set and its pool (the suite closes each case's stores). */
async function freshStore<K extends 'deadLetters' | 'idempotency' | 'events'>(
  kind: K,
): Promise<PostgresStores[K]> {
  const stores = await fresh();
  return new Proxy(stores[kind], {
    get: (target, property, receiver) =>
      property === 'close' ? () => stores.close() : (Reflect.get(target, property, receiver) as unknown),
  });
}
runStoreSuite('postgres', {
  deadLetters: async (): Promise<PostgresDeadLetterStore> => freshStore('deadLetters'),
  idempotency: async (): Promise<PostgresIdempotencyStore> => freshStore('idempotency'),
  events: async (): Promise<PostgresEventStore> => freshStore('events'),
  cleanup: async () => {
    await Promise.all(opened.map((s) => s.close()));
    await dropSchemas(SHARED_URL, storeSchemas);
  },
});
