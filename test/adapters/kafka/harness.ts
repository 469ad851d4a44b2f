/**
 * Where the Kafka tests run: a real cluster when `KAFKA_BROKERS=host:port[,host:port]` is set,
 * otherwise a librdkafka mock cluster hosted by a `kcat` child process (killed by its pid after).
 */
import { MockCluster } from '../../../src/adapters/kafka/mock-cluster.js';
import { kafka, type KafkaTransport, type KafkaTransportOptions } from '../../../src/adapters/kafka/index.js';

export const REAL_BROKERS = process.env.KAFKA_BROKERS;

/** `{ skip }` when neither a real cluster nor kcat is available (never under CI: there it fails). */
export function kafkaAvailable(): { skip?: string } {
  if (REAL_BROKERS || process.env.CI === 'true' || MockCluster.available()) return {};
  return { skip: 'kcat not installed (apt-get install kcat) and KAFKA_BROKERS not set' };
}

export interface TestCluster {
  readonly brokers: string;
  /** Present only for the mock: kills kcat and starts an empty cluster on new ports. */
  readonly restart?: () => Promise<void>;
  readonly pid?: number;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<TestCluster> {
  if (REAL_BROKERS) return { brokers: REAL_BROKERS, stop: async () => undefined };
  const mock = await MockCluster.start();
  return {
    get brokers() {
      return mock.bootstrap;
    },
    get pid() {
      return mock.pid;
    },
    restart: async () => {
      await mock.restart();
    },
    stop: () => mock.stop(),
  };
}

/** A unique namespace per test file, so runs on a shared real cluster do not meet. */
export function uniqueNamespace(prefix: string): string {
  return `herald-test-${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

/** A transport with test-friendly timings; errors are collected rather than printed. */
export function testTransport(
  brokers: string,
  namespace: string,
  options: Partial<KafkaTransportOptions> = {},
): KafkaTransport {
  // A short session makes the mock's rebalances short (it waits session timeout - 1 s for members).
  return kafka({
    brokers,
    namespace,
    sessionTimeoutMs: 3000,
    librdkafka: { 'heartbeat.interval.ms': 500 },
    onError: () => undefined,
    ...options,
  });
}
