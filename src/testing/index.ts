/**
 * `herald/testing`: the conformance suites every transport and store adapter passes, for adapters
 * inside and outside this package. Run them under node's test runner (`node --test`):
 *
 * @example
 * import { runTransportSuite, runStoreSuite } from 'herald/testing';
 * runTransportSuite('my-broker', { create: async () => myTransport({ url }), cleanup: ... });
 * runStoreSuite('my-broker', { deadLetters: async () => new MyDeadLetterStore(...) });
 *
 * See docs/adapters/writing-an-adapter.md.
 */
export {
  runTransportSuite,
  message,
  TRANSPORT_CASES,
  type TransportFeatures,
  type TransportHarness,
} from './transport-suite.js';
export { runStoreSuite, type StoreHarness } from './store-suite.js';
export { sleep, unique, waitUntil } from './wait.js';
