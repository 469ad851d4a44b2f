import {
  MemoryDeadLetterStore,
  MemoryEventStore,
  MemoryIdempotencyStore,
  MemoryTransport,
} from '../../src/index.js';
import { MemoryHandle } from './memory-handle.js';
import { runStoreSuite } from '../../src/testing/index.js';
import { runTransportSuite } from '../../src/testing/index.js';

// One in-process broker; every create() is a client handle on it, as another process would have.
const shared = new MemoryTransport();
runTransportSuite('memory', {
  create: async () => new MemoryHandle(shared),
  cleanup: () => shared.close(),
});

runStoreSuite('memory', {
  deadLetters: async () => new MemoryDeadLetterStore(),
  idempotency: async () => new MemoryIdempotencyStore(),
  events: async () => new MemoryEventStore(),
});
