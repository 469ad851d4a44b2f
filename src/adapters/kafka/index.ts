/**
 * `herald/kafka`: the Kafka transport on librdkafka (`@confluentinc/kafka-javascript`, an optional
 * peer). The only module that imports the Kafka client.
 */
export { kafka, KafkaTransport, KafkaPublishError, KafkaConnectError } from './transport.js';
export type { KafkaTransportOptions, KafkaCompression, KafkaAcks } from './options.js';
export {
  kafkaHealthCheck,
  kafkaLagCheck,
  type KafkaHealthCheckOptions,
  type KafkaLagCheckOptions,
} from './health.js';
export { mirrorDeadLetters, DLQ_HEADERS } from './dead-letter-mirror.js';
export { MockCluster, MockClusterError, type MockClusterOptions } from './mock-cluster.js';
