/**
 * The shared transport conformance suite against Kafka: a librdkafka mock cluster in a kcat child
 * process, or the cluster named by KAFKA_BROKERS. Split over the conformance.<n>.test.ts files:
 * every new consumer group waits about 3 s for its first join, so one file would run for minutes.
 */
import { before, describe } from 'node:test';
import { runTransportSuite } from '../../../src/testing/index.js';
import {
  kafkaAvailable,
  REAL_BROKERS,
  startCluster,
  testTransport,
  uniqueNamespace,
  type TestCluster,
} from './harness.js';

export const SHARDS = 3;

const MOCK_LIMITS: Record<string, string> = REAL_BROKERS
  ? {}
  : {
      'broker restart: nothing acknowledged by publish is lost':
        'the librdkafka mock cluster keeps nothing across a restart (every record and offset is in kcat memory) and comes back on new ports; ' +
        'the case "mock cluster restart" in test/adapters/kafka/transport.test.ts shows what a mock restart can: publishes fail loudly while it is down, and clients work against the new cluster',
    };

/** Runs shard `index` of `SHARDS` of the suite, each on its own mock cluster. */
export function kafkaConformance(index: number): void {
  describe(`kafka transport conformance (part ${index + 1} of ${SHARDS})`, kafkaAvailable(), () => {
    let cluster: TestCluster;
    const namespace = uniqueNamespace('conformance');
    before(async () => {
      cluster = await startCluster();
    });
    runTransportSuite('kafka', {
      create: async () => testTransport(cluster.brokers, namespace),
      cleanup: () => cluster.stop(),
      unsupported: MOCK_LIMITS,
      shard: { index, count: SHARDS },
      // The scheduler is a consumer group (ADR 0923): the first scheduled publish of an instance
      // waits for its group join, about 3 s on a real broker and 3-6 s on the mock.
      scheduleLeadMs: 8000,
    });
  });
}
