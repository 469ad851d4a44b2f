import type { NatsConnection } from '@nats-io/transport-node';
import { ConfigError } from '../../core/errors.js';
import { validateNamespace } from './names.js';

/** How to reach NATS: `servers` (default `nats://127.0.0.1:4222`) or a `connection` you own. */
export interface NatsConnectionOptions {
  /** `nats://host:port`, or several for a cluster. */
  readonly servers?: string | readonly string[];
  /** A connection you own: Herald uses it and never closes it. */
  readonly connection?: NatsConnection;
  /** Prefix of every stream, subject and bucket Herald creates. Default `herald`. */
  readonly namespace?: string;
  /** How long the first connect may take before start fails. Default 3000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Called with every connection or background error (a broker restart, a failed lease renewal,
   * ...). Default: `process.emitWarning`, so nothing fails silently.
   */
  readonly onError?: (error: Error, context: string) => void;
}

/** Settings of the topics stream, used when Herald creates it (an existing stream is left as it is). */
export interface NatsStreamOptions {
  /** `file` (default) or `memory`. With `memory` an acknowledged message is lost if the server stops. */
  readonly storage?: 'file' | 'memory';
  /** Copies in a cluster: 1 (default), 3 or 5. */
  readonly replicas?: number;
  /** Drop messages older than this (0 = keep, the default). */
  readonly maxAgeMs?: number;
  /** Keep at most this many messages (0 = no limit, the default). */
  readonly maxMessages?: number;
  /** Publisher retries with the same event id within this window are dropped. Default 120 000. */
  readonly duplicateWindowMs?: number;
}

export interface NatsTransportOptions extends NatsConnectionOptions {
  /**
   * The lease: a delivery not acknowledged within this time goes to another member. Live
   * consumers send `working()` for their in-flight deliveries every third of it, so this bounds
   * how long a crashed consumer's messages wait, not how long a handler may run. Default 30 000.
   */
  readonly ackWaitMs?: number;
  /** How long one pull request waits at the server for messages. Default 5000. */
  readonly pullExpiresMs?: number;
  /**
   * With `ordering: 'key'`, messages held back behind an earlier message of their key that this
   * member may keep (they are not handed out and take no prefetch slot); beyond it they go back
   * to the group. Default 4 x prefetch, at least 64.
   */
  readonly maxHeld?: number;
  readonly stream?: NatsStreamOptions;
}

export interface ResolvedStreamOptions {
  readonly storage: 'file' | 'memory';
  readonly replicas: number;
  readonly maxAgeMs: number;
  readonly maxMessages: number;
  readonly duplicateWindowMs: number;
}

export interface ResolvedTransportOptions {
  readonly namespace: string;
  readonly ackWaitMs: number;
  readonly pullExpiresMs: number;
  readonly maxHeld: number | undefined;
  readonly stream: ResolvedStreamOptions;
}

const TRANSPORT_FIELDS = [
  'servers',
  'connection',
  'namespace',
  'connectTimeoutMs',
  'onError',
  'ackWaitMs',
  'pullExpiresMs',
  'maxHeld',
  'stream',
];
const STREAM_FIELDS = ['storage', 'replicas', 'maxAgeMs', 'maxMessages', 'duplicateWindowMs'];

export function integer(field: string, value: unknown, min: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function known(where: string, options: object, fields: readonly string[]): void {
  const unknown = Object.keys(options).filter((k) => !fields.includes(k));
  if (unknown.length > 0)
    throw new ConfigError(`${where}${unknown[0]}`, `is not an option; known: ${fields.join(', ')}`);
}

/** Checks the connection options shared by the transport and the stores; returns the namespace. */
export function validateConnectionOptions(
  options: NatsConnectionOptions,
  fields?: readonly string[],
): string {
  if (options === null || typeof options !== 'object') throw new ConfigError('options', 'must be an object');
  known('', options, fields ?? ['servers', 'connection', 'namespace', 'connectTimeoutMs', 'onError']);
  if (options.servers !== undefined && options.connection !== undefined)
    throw new ConfigError('servers', 'give either servers or connection, not both');
  if (options.servers !== undefined) {
    const list = typeof options.servers === 'string' ? [options.servers] : options.servers;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      list.some((s) => typeof s !== 'string' || s.length === 0)
    )
      throw new ConfigError('servers', 'must be a URL such as nats://127.0.0.1:4222, or a list of them');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new ConfigError('onError', 'must be a function');
  integer('connectTimeoutMs', options.connectTimeoutMs, 1, 3000);
  return validateNamespace(options.namespace ?? 'herald');
}

/** Validates transport options and fills in defaults; throws ConfigError naming the field. */
export function resolveTransportOptions(options: NatsTransportOptions): ResolvedTransportOptions {
  const namespace = validateConnectionOptions(options, TRANSPORT_FIELDS);
  const s = options.stream ?? {};
  if (s === null || typeof s !== 'object') throw new ConfigError('stream', 'must be an object');
  known('stream.', s, STREAM_FIELDS);
  if (s.storage !== undefined && s.storage !== 'file' && s.storage !== 'memory')
    throw new ConfigError('stream.storage', `must be "file" or "memory", got ${JSON.stringify(s.storage)}`);
  return {
    namespace,
    ackWaitMs: integer('ackWaitMs', options.ackWaitMs, 100, 30_000),
    pullExpiresMs: integer('pullExpiresMs', options.pullExpiresMs, 1000, 5_000),
    maxHeld: options.maxHeld === undefined ? undefined : integer('maxHeld', options.maxHeld, 1, 0),
    stream: {
      storage: s.storage ?? 'file',
      replicas: integer('stream.replicas', s.replicas, 1, 1),
      maxAgeMs: integer('stream.maxAgeMs', s.maxAgeMs, 0, 0),
      maxMessages: integer('stream.maxMessages', s.maxMessages, 0, 0),
      duplicateWindowMs: integer('stream.duplicateWindowMs', s.duplicateWindowMs, 100, 120_000),
    },
  };
}
