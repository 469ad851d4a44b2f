import type pg from 'pg';
import { ConfigError } from '../../core/errors.js';
import { validateSchemaName } from './schema.js';

/** Where Herald's tables are: a database and a schema in it. Shared by the transport, stores and outbox. */
export interface PostgresConnectionOptions {
  /** `postgres://user@host:port/database`. Give this or `pool`. */
  readonly connectionString?: string;
  /** A pool you own (never closed by Herald). Give this or `connectionString`. */
  readonly pool?: pg.Pool;
  /** Schema holding Herald's tables; created with them when missing. Default `herald`. */
  readonly schema?: string;
  /** How long to wait for PostgreSQL to answer at start before failing. Default 3000. */
  readonly connectTimeoutMs?: number;
  /** Connections in the pool Herald opens (ignored with `pool`). Default 10. */
  readonly poolSize?: number;
  /** Create nothing: fail when the schema does not exist (read-only tools). Default false. */
  readonly mustExist?: boolean;
}

/** How long acknowledged messages are kept. Unacknowledged messages are never deleted. */
export interface PostgresRetentionOptions {
  /** Acknowledged messages older than this are deleted. `Infinity` keeps them. Default one day. */
  readonly maxAgeMs?: number;
  /** At most this many messages are kept per topic; the oldest acknowledged go first. Default: no limit. */
  readonly maxMessages?: number;
}

/** Options of {@link postgres} / {@link PostgresTransport}. */
export interface PostgresTransportOptions extends PostgresConnectionOptions {
  /**
   * How long a lease on a delivered message lasts without renewal. A live process renews its leases
   * every third of this, so it bounds how soon a crashed member's messages go to another member.
   * Default 30 000.
   */
  readonly visibilityTimeoutMs?: number;
  /**
   * Safety-net poll of an idle member. Members are woken by LISTEN/NOTIFY on every publish and
   * settlement and by a timer at the next redelivery time; this only bounds how late an expired
   * lease of a crashed member (or a lost notification) is noticed. Default 1000.
   */
  readonly pollIntervalMs?: number;
  readonly retention?: PostgresRetentionOptions;
  /** How long close() waits for queries under way before ending the connections anyway. Default 5000. */
  readonly closeTimeoutMs?: number;
  /** Errors of background work (polling, renewal, retention, LISTEN). Default `process.emitWarning`. */
  readonly onError?: (error: Error) => void;
}

export interface ResolvedConnectionOptions {
  readonly connectionString?: string;
  readonly pool?: pg.Pool;
  readonly schema: string;
  readonly connectTimeoutMs: number;
  readonly poolSize: number;
  readonly mustExist: boolean;
}

export interface ResolvedTransportOptions extends ResolvedConnectionOptions {
  readonly visibilityTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly retention: { readonly maxAgeMs: number; readonly maxMessages: number };
  readonly closeTimeoutMs: number;
  readonly onError: (error: Error) => void;
}

export const CONNECTION_KEYS = [
  'connectionString',
  'pool',
  'schema',
  'connectTimeoutMs',
  'poolSize',
  'mustExist',
] as const;
const TRANSPORT_KEYS = [
  ...CONNECTION_KEYS,
  'visibilityTimeoutMs',
  'pollIntervalMs',
  'retention',
  'closeTimeoutMs',
  'onError',
];

/** Validates connection options; every problem is a ConfigError naming the field. */
export function resolveConnectionOptions(
  options: PostgresConnectionOptions,
  allowedKeys: readonly string[] = CONNECTION_KEYS,
): ResolvedConnectionOptions {
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('options', 'must be an object like { connectionString: "postgres://..." }');
  for (const key of Object.keys(options)) {
    if (!allowedKeys.includes(key))
      throw new ConfigError(key, `is not an option; known options: ${allowedKeys.join(', ')}`);
  }
  const given = (['connectionString', 'pool'] as const).filter((k) => options[k] !== undefined);
  if (given.length !== 1)
    throw new ConfigError(
      'connectionString',
      `give exactly one of connectionString, pool (got ${given.join(', ') || 'none'})`,
    );
  if (options.connectionString !== undefined && typeof options.connectionString !== 'string')
    throw new ConfigError('connectionString', 'must be a string like postgres://user@host:5432/database');
  return {
    ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
    ...(options.pool !== undefined ? { pool: options.pool } : {}),
    schema: validateSchemaName(options.schema ?? 'herald'),
    connectTimeoutMs: integer('connectTimeoutMs', options.connectTimeoutMs, 3000, 1),
    poolSize: integer('poolSize', options.poolSize, 10, 1),
    mustExist: options.mustExist === true,
  };
}

/** Validates transport options; every problem is a ConfigError naming the field. */
export function resolveTransportOptions(options: PostgresTransportOptions): ResolvedTransportOptions {
  const connection = resolveConnectionOptions(options, TRANSPORT_KEYS);
  const retention = options.retention ?? {};
  if (typeof retention !== 'object' || retention === null)
    throw new ConfigError('retention', 'must be an object like { maxAgeMs: 86400000, maxMessages: 1000000 }');
  for (const key of Object.keys(retention)) {
    if (key !== 'maxAgeMs' && key !== 'maxMessages')
      throw new ConfigError(`retention.${key}`, 'is not an option; known options: maxAgeMs, maxMessages');
  }
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new ConfigError('onError', 'must be a function');
  return {
    ...connection,
    visibilityTimeoutMs: integer('visibilityTimeoutMs', options.visibilityTimeoutMs, 30_000, 100),
    pollIntervalMs: integer('pollIntervalMs', options.pollIntervalMs, 1000, 10),
    closeTimeoutMs: integer('closeTimeoutMs', options.closeTimeoutMs, 5000, 1),
    retention: {
      maxAgeMs: integerOrInfinity('retention.maxAgeMs', retention.maxAgeMs, 86_400_000),
      maxMessages: integerOrInfinity('retention.maxMessages', retention.maxMessages, Infinity),
    },
    onError: options.onError ?? ((error) => process.emitWarning(error)),
  };
}

export function integer(field: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min)
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

function integerOrInfinity(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return value;
  if (!Number.isInteger(value) || value < 1)
    throw new ConfigError(field, `must be an integer >= 1 or Infinity, got ${String(value)}`);
  return value;
}
