/**
 * Scheduled publish on Kafka (ADR 0923), against the librdkafka mock cluster (or KAFKA_BROKERS):
 * the shared cases, plus a schedule topic record written by kcat that is not Herald's.
 */
import { after, before, describe } from 'node:test';
import { runScheduledCases } from '../scheduled-cases.js';
import { kafkaAvailable, startCluster, testTransport, uniqueNamespace, type TestCluster } from './harness.js';

describe('kafka transport: scheduled publish', kafkaAvailable(), () => {
  let cluster: TestCluster;
  const namespace = uniqueNamespace('sched');
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster.stop());

  runScheduledCases('kafka', {
    create: async () => testTransport(cluster.brokers, namespace),
    // Moving takes two produce-and-fetch hops (the move record read back by the scheduler, then
    // the message on its topic), each up to fetch.wait.max.ms = 100 ms plus linger 5 ms and the
    // consumer's 100 ms poll timeout when it is idle: 400 ms.
    slackMs: 400,
    // A new transport's scheduler must be in its group before the messages come due: the mock
    // cluster takes 3-6 s for a join after the previous member left (measured); until then due
    // messages wait (late, never early).
    delayMs: 10_000,
  });
});
