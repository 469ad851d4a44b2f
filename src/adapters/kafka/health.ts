import { ConfigError } from '../../core/errors.js';
import type { CheckSettings } from '../../health/checks.js';
import type { HealthCheck } from '../../health/types.js';
import { Producer } from './driver.js';

export interface KafkaHealthCheckOptions extends CheckSettings {
  /** Bootstrap brokers, `host:port[,host:port]`. */
  readonly brokers: string;
  /** Extra librdkafka properties (security settings). */
  readonly librdkafka?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The cluster answers a metadata request. Each run opens a short-lived client, so a stopped
 * cluster fails the check within its timeout instead of hanging.
 */
export function kafkaHealthCheck(options: KafkaHealthCheckOptions): HealthCheck {
  if (typeof options.brokers !== 'string' || options.brokers.length === 0)
    throw new ConfigError('brokers', 'give the bootstrap brokers, e.g. "127.0.0.1:9092"');
  const timeoutMs = options.timeoutMs ?? 3000;
  return {
    name: options.name ?? 'kafka',
    critical: options.critical ?? true,
    timeoutMs,
    ...(options.degradedAfterMs !== undefined ? { degradedAfterMs: options.degradedAfterMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check(signal) {
      const client = new Producer({
        ...options.librdkafka,
        'bootstrap.servers': options.brokers,
        'client.id': 'herald-health',
        'socket.connection.setup.timeout.ms': Math.max(1000, timeoutMs),
      });
      client.on('event.error', () => undefined); // reported through the failed connect
      const onAbort = (): void => {
        // Still connecting: the client throws "not connected"; the failed connect ends the check.
        if (client.isConnected()) client.disconnect();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await new Promise<void>((resolve, reject) =>
          client.connect({ timeout: timeoutMs }, (err) => (err ? reject(new Error(err.message)) : resolve())),
        );
        const brokers = await new Promise<number>((resolve, reject) =>
          client.getMetadata({ timeout: timeoutMs }, (err, data) =>
            err ? reject(new Error(err.message)) : resolve(data.brokers.length),
          ),
        );
        if (brokers === 0) throw new Error('the cluster reported no brokers');
      } finally {
        signal.removeEventListener('abort', onAbort);
        if (client.isConnected()) await new Promise<void>((resolve) => client.disconnect(() => resolve()));
      }
    },
  };
}

export interface KafkaLagCheckOptions extends CheckSettings {
  /** The transport whose cluster holds the group. */
  readonly transport: {
    partitionLag(topic: string, group: string): Promise<{ partition: number; lag: number }[]>;
  };
  readonly topic: string;
  readonly group: string;
  /** Total lag above which the check reports degraded. */
  readonly maxLag: number;
}

/** Lag of one group on one topic, per partition in the details; degraded above `maxLag`. */
export function kafkaLagCheck(options: KafkaLagCheckOptions): HealthCheck {
  if (!Number.isInteger(options.maxLag) || options.maxLag < 0)
    throw new ConfigError('maxLag', `must be an integer >= 0, got ${String(options.maxLag)}`);
  return {
    name: options.name ?? `kafka-lag:${options.topic}/${options.group}`,
    critical: options.critical ?? false,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.cacheTtlMs !== undefined ? { cacheTtlMs: options.cacheTtlMs } : {}),
    async check() {
      const partitions = await options.transport.partitionLag(options.topic, options.group);
      const lag = partitions.reduce((sum, p) => sum + p.lag, 0);
      const details = { lag, partitions: Object.fromEntries(partitions.map((p) => [p.partition, p.lag])) };
      return lag > options.maxLag
        ? { status: 'degraded', message: `lag ${lag} is above ${options.maxLag}`, details }
        : { details };
    },
  };
}
