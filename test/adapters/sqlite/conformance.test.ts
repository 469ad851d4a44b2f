import {
  SqliteDeadLetterStore,
  SqliteEventStore,
  SqliteIdempotencyStore,
  SqliteTransport,
} from '../../../src/adapters/sqlite/index.js';
import { runStoreSuite } from '../../../src/testing/index.js';
import { runTransportSuite } from '../../../src/testing/index.js';
import { tempDir } from './helpers.js';

// Every create() is a new transport instance on the same file, as another process would have.
const transportDir = tempDir('herald-sqlite-conformance-');
runTransportSuite('sqlite', {
  create: async () =>
    new SqliteTransport({ path: transportDir.file(), pollIntervalMs: 50, visibilityTimeoutMs: 2000 }),
  cleanup: async () => transportDir.cleanup(),
});

// Each store call needs an empty store: a new file per call.
const storeDir = tempDir('herald-sqlite-stores-');
let files = 0;
const nextFile = (): string => storeDir.file(`stores-${++files}.db`);
runStoreSuite('sqlite', {
  deadLetters: async () => new SqliteDeadLetterStore({ path: nextFile() }),
  idempotency: async () => new SqliteIdempotencyStore({ path: nextFile() }),
  events: async () => new SqliteEventStore({ path: nextFile() }),
  cleanup: async () => storeDir.cleanup(),
});
