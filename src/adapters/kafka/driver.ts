/*
 * The one import of the Kafka client. The package is CommonJS and builds its exports by spreading
 * an object, which Node's ESM named-export detection cannot see: take the default export.
 */
import kafka, {
  type Assignment,
  type KafkaConsumer as RdKafkaConsumer,
} from '@confluentinc/kafka-javascript';

export const { Producer, AdminClient } = kafka;

/**
 * What this build of librdkafka was compiled with (its `builtin.features`: `gzip`, `snappy`,
 * `lz4`, `zstd`, `ssl`...), and its version.
 */
export const { features: librdkafkaFeatures, librdkafkaVersion } = kafka;

/** Methods the client has at run time that its type declarations leave out. */
export interface KafkaConsumerClient extends RdKafkaConsumer {
  setDefaultIsTimeoutOnlyForFirstMessage(timeoutOnlyForFirst: boolean): void;
  rebalanceProtocol(): 'COOPERATIVE' | 'EAGER' | 'NONE';
  incrementalAssign(assignments: Assignment[]): void;
  incrementalUnassign(assignments: Assignment[]): void;
}

export const KafkaConsumer = kafka.KafkaConsumer as unknown as new (
  ...args: ConstructorParameters<typeof kafka.KafkaConsumer>
) => KafkaConsumerClient;

export type {
  IAdminClient as AdminClientHandle,
  Producer as ProducerClient,
  LibrdKafkaError,
  Message as KafkaRecord,
  TopicPartition,
  TopicPartitionOffset,
  Assignment,
} from '@confluentinc/kafka-javascript';

/** librdkafka's rebalance event codes. */
export const ASSIGN_PARTITIONS = -175;
export const REVOKE_PARTITIONS = -174;

/**
 * Disconnects a client, resolving when it is closed. The client throws synchronously ("not
 * connected") when it never connected, e.g. after a failed connect to a dead cluster: there is
 * nothing to close then, and the throw must not escape from a callback as an uncaught exception.
 */
export function disconnectQuietly(client: {
  disconnect(cb?: (err: unknown) => void): unknown;
}): Promise<void> {
  return new Promise<void>((resolve) => {
    try {
      client.disconnect(() => resolve());
    } catch {
      resolve();
    }
  });
}
