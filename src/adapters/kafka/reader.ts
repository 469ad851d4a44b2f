import { toError } from '../../core/errors.js';
import { disconnectQuietly, KafkaConsumer, type KafkaConsumerClient } from './driver.js';
import { kafkaName, type ResolvedKafkaOptions } from './options.js';

/**
 * A consumer that only reads with `assign()`: it never subscribes nor commits, so it joins no
 * group and moves no one's offsets. Used to replay Herald's own topics (schedule, group registry).
 * `name` makes its client id and (unused) group id.
 */
export function openReader(
  o: ResolvedKafkaOptions,
  name: string,
  report: (error: unknown, context: string) => void,
): Promise<KafkaConsumerClient> {
  return new Promise<KafkaConsumerClient>((resolve, reject) => {
    const client = new KafkaConsumer({
      ...o.librdkafka,
      'bootstrap.servers': o.brokers,
      'client.id': `${o.clientId}-${name}`,
      'group.id': kafkaName(o.namespace, `herald.${name}`, 'group'),
      'enable.auto.commit': false,
      'fetch.wait.max.ms': 50,
    });
    client.on('event.error', (err) => report(err, name));
    client.connect({ timeout: o.connectTimeoutMs }, (err) => {
      if (err) {
        void disconnectQuietly(client);
        reject(toError(err));
        return;
      }
      client.setDefaultConsumeTimeout(100);
      resolve(client);
    });
  });
}
