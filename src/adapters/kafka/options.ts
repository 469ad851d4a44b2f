import { ConfigError } from '../../core/errors.js';

export type KafkaCompression = 'none' | 'snappy' | 'lz4' | 'zstd' | 'gzip';
export type KafkaAcks = 'all' | 1 | 0;

export interface KafkaTransportOptions {
  /** Bootstrap brokers: `host:port` strings, or one comma-separated string. */
  readonly brokers: string | readonly string[];
  /**
   * Prefix of every Kafka topic and consumer group id this transport uses (`<namespace>.<topic>`),
   * so several applications or test runs can share a cluster. Default: none.
   */
  readonly namespace?: string;
  /** `client.id` sent to the brokers. Default `herald`. */
  readonly clientId?: string;
  /** Acknowledgements a publish waits for: `all` (default; in-sync replicas), `1` (leader) or `0` (none). */
  readonly acks?: KafkaAcks;
  /** Idempotent producer: no duplicates or reordering from producer retries. Needs `acks: 'all'`. Default true. */
  readonly idempotent?: boolean;
  /** How long the producer waits to fill a batch (`linger.ms`). Default 5. */
  readonly lingerMs?: number;
  /** Most messages in one produce batch (`batch.num.messages`). Default 10 000. */
  readonly batchSize?: number;
  /** Record batch compression. Default `snappy`. */
  readonly compression?: KafkaCompression;
  /** A publish fails when not acknowledged within this time (`message.timeout.ms`). Default 30 000. */
  readonly publishTimeoutMs?: number;
  /** Consumer session timeout: a member that stops heartbeating is out after this. Default 10 000. */
  readonly sessionTimeoutMs?: number;
  /**
   * `max.poll.interval.ms`. Herald polls from its own loop whatever the handlers do (a full member
   * pauses its partitions and keeps polling), so a long handler never exceeds it. Default 300 000.
   */
  readonly maxPollIntervalMs?: number;
  /** `cooperative` (default: cooperative-sticky, incremental rebalances) or `eager` (range). */
  readonly rebalance?: 'cooperative' | 'eager';
  /**
   * Most fetched records one member keeps in memory beyond its prefetch (waiting for a slot, held
   * back by their key, or waiting for a delayed redelivery). Past it the member pauses its
   * partitions. Default 10 000.
   */
  readonly maxBuffered?: number;
  /** How often settled offsets are committed. Default 100 ms. */
  readonly commitIntervalMs?: number;
  /** Longest one poll waits for records. Default 100 ms. */
  readonly pollTimeoutMs?: number;
  /** How long `subscribe` of a group starting from `latest` waits for its first assignment. Default 10 000 ms. */
  readonly assignTimeoutMs?: number;
  /** How long connecting may take before `publish` or `subscribe` fails. Default 10 000 ms. */
  readonly connectTimeoutMs?: number;
  /** Extra librdkafka properties, passed as they are to every client (e.g. security settings). */
  readonly librdkafka?: Readonly<Record<string, string | number | boolean>>;
  /**
   * Called with every client or background error (a lost broker, a failed commit...). Default:
   * `process.emitWarning`, so nothing fails silently.
   */
  readonly onError?: (error: Error, context: string) => void;
}

export interface ResolvedKafkaOptions {
  readonly brokers: string;
  readonly namespace: string | undefined;
  readonly clientId: string;
  readonly acks: KafkaAcks;
  readonly idempotent: boolean;
  readonly lingerMs: number;
  readonly batchSize: number;
  readonly compression: KafkaCompression;
  readonly publishTimeoutMs: number;
  readonly sessionTimeoutMs: number;
  readonly maxPollIntervalMs: number;
  readonly rebalance: 'cooperative' | 'eager';
  readonly maxBuffered: number;
  readonly commitIntervalMs: number;
  readonly pollTimeoutMs: number;
  readonly assignTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly librdkafka: Readonly<Record<string, string | number | boolean>>;
  readonly onError: (error: Error, context: string) => void;
}

const KNOWN = [
  'brokers',
  'namespace',
  'clientId',
  'acks',
  'idempotent',
  'lingerMs',
  'batchSize',
  'compression',
  'publishTimeoutMs',
  'sessionTimeoutMs',
  'maxPollIntervalMs',
  'rebalance',
  'maxBuffered',
  'commitIntervalMs',
  'pollTimeoutMs',
  'assignTimeoutMs',
  'connectTimeoutMs',
  'librdkafka',
  'onError',
] as const;

const COMPRESSIONS: readonly KafkaCompression[] = ['none', 'snappy', 'lz4', 'zstd', 'gzip'];
/** Kafka's legal topic characters; the namespace becomes part of every topic name. */
const NAME = /^[A-Za-z0-9._-]+$/;

function integer(field: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

function oneOf<T>(field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T))
    throw new ConfigError(
      field,
      `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${JSON.stringify(value)}`,
    );
  return value as T;
}

/** Checks every option (ConfigError naming the field and, for unknown ones, the known ones). */
export function resolveKafkaOptions(options: KafkaTransportOptions): ResolvedKafkaOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  const unknown = Object.keys(options).filter((k) => !(KNOWN as readonly string[]).includes(k));
  if (unknown.length > 0)
    throw new ConfigError(unknown[0]!, `unknown Kafka transport option; known: ${KNOWN.join(', ')}`);
  const list = typeof options.brokers === 'string' ? options.brokers.split(',') : options.brokers;
  if (!Array.isArray(list) || list.length === 0)
    throw new ConfigError(
      'brokers',
      'give the bootstrap brokers, e.g. "127.0.0.1:9092" or ["b1:9092", "b2:9092"]',
    );
  const brokers = list.map((b) => String(b).trim());
  const bad = brokers.find((b) => !/^[^\s:,/]+:\d+$/.test(b));
  if (bad !== undefined) throw new ConfigError('brokers', `expected host:port, got ${JSON.stringify(bad)}`);
  if (
    options.namespace !== undefined &&
    (typeof options.namespace !== 'string' || !NAME.test(options.namespace))
  )
    throw new ConfigError(
      'namespace',
      `only letters, digits, ".", "_" and "-", got ${JSON.stringify(options.namespace)}`,
    );
  const acks = oneOf<KafkaAcks>('acks', options.acks, ['all', 1, 0], 'all');
  if (options.idempotent !== undefined && typeof options.idempotent !== 'boolean')
    throw new ConfigError('idempotent', 'must be a boolean');
  const idempotent = options.idempotent ?? acks === 'all';
  if (idempotent && acks !== 'all')
    throw new ConfigError(
      'idempotent',
      `an idempotent producer needs acks "all"; got acks ${String(acks)} (set idempotent: false)`,
    );
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new ConfigError('onError', 'must be a function');
  if (
    options.librdkafka !== undefined &&
    (options.librdkafka === null || typeof options.librdkafka !== 'object')
  )
    throw new ConfigError('librdkafka', 'must be an object of librdkafka properties');
  return {
    brokers: brokers.join(','),
    namespace: options.namespace,
    clientId:
      typeof options.clientId === 'string' && options.clientId.length > 0 ? options.clientId : 'herald',
    acks,
    idempotent,
    lingerMs: integer('lingerMs', options.lingerMs, 0, 5),
    batchSize: integer('batchSize', options.batchSize, 1, 10_000),
    compression: oneOf('compression', options.compression, COMPRESSIONS, 'snappy'),
    publishTimeoutMs: integer('publishTimeoutMs', options.publishTimeoutMs, 1, 30_000),
    sessionTimeoutMs: integer('sessionTimeoutMs', options.sessionTimeoutMs, 1, 10_000),
    maxPollIntervalMs: integer('maxPollIntervalMs', options.maxPollIntervalMs, 1, 300_000),
    rebalance: oneOf('rebalance', options.rebalance, ['cooperative', 'eager'] as const, 'cooperative'),
    maxBuffered: integer('maxBuffered', options.maxBuffered, 1, 10_000),
    commitIntervalMs: integer('commitIntervalMs', options.commitIntervalMs, 1, 100),
    pollTimeoutMs: integer('pollTimeoutMs', options.pollTimeoutMs, 1, 100),
    assignTimeoutMs: integer('assignTimeoutMs', options.assignTimeoutMs, 0, 10_000),
    connectTimeoutMs: integer('connectTimeoutMs', options.connectTimeoutMs, 1, 10_000),
    librdkafka: options.librdkafka ?? {},
    onError:
      options.onError ??
      ((error, context) =>
        process.emitWarning(`herald kafka: ${context}: ${error.message}`, { code: 'HERALD_KAFKA' })),
  };
}

/**
 * Fails when this librdkafka build cannot compress with `compression` (librdkafka itself would
 * only fail the first publish). `features` is librdkafka's `builtin.features`.
 */
export function checkCompression(
  compression: KafkaCompression,
  features: readonly string[],
  version: string,
): void {
  if (compression === 'none' || features.includes(compression)) return;
  const supported = COMPRESSIONS.filter((c) => c === 'none' || features.includes(c));
  throw new ConfigError(
    'compression',
    `${JSON.stringify(compression)} is not compiled into this librdkafka ${version} (builtin.features: ${features.join(',')}); ` +
      `this build supports ${supported.map((c) => JSON.stringify(c)).join(', ')}` +
      (compression === 'zstd'
        ? '; rebuild the client with libzstd-dev installed (CKJS_LINKING=dynamic npm rebuild @confluentinc/kafka-javascript)'
        : ''),
  );
}

/** Checks a Herald topic name against Kafka's rules once the namespace is added. */
export function kafkaName(namespace: string | undefined, name: string, field: 'topic' | 'group'): string {
  if (typeof name !== 'string' || name.length === 0)
    throw new ConfigError(field, 'must be a non-empty string');
  const full = namespace === undefined ? name : `${namespace}.${name}`;
  if (field === 'topic' && (!NAME.test(full) || full.length > 249))
    throw new ConfigError(
      'topic',
      `Kafka topic names use only letters, digits, ".", "_" and "-" (at most 249), got ${JSON.stringify(full)}`,
    );
  return full;
}
