import { ConfigError } from '../../core/errors.js';

/** How long acknowledged messages stay in the file. Unacknowledged messages are never deleted. */
export interface SqliteRetentionOptions {
  /**
   * Acknowledged messages older than this are deleted. `Infinity` keeps them (until `maxMessages`).
   * Default 86 400 000 (one day).
   */
  readonly maxAgeMs?: number;
  /**
   * At most this many messages are kept per topic; the oldest acknowledged ones go first.
   * Default: no limit.
   */
  readonly maxMessages?: number;
}

/** Connection-level options shared by the transport and the stores. */
export interface SqliteConnectionOptions {
  /** Database file; created (with its schema) when missing. Its directory must exist and be writable. */
  readonly path: string;
  /**
   * How long a connection waits for another connection's lock before failing with SqliteBusyError.
   * Default 5000.
   */
  readonly busyTimeoutMs?: number;
  /**
   * `normal` (default): a commit survives a process crash; the last commits may be lost on power
   * loss or an OS crash. `full`: survives power loss too, at a cost per commit.
   */
  readonly synchronous?: 'normal' | 'full';
}

/** Options of {@link sqlite} / {@link SqliteTransport}. */
export interface SqliteTransportOptions extends SqliteConnectionOptions {
  /**
   * How long a lease on a delivered message lasts without renewal. A live process renews its
   * leases every third of this, so it only bounds how soon a crashed member's messages go to
   * another member. Default 30 000.
   */
  readonly visibilityTimeoutMs?: number;
  /** Longest wait between polls when idle; polls back off from 5 ms up to this. Default 100. */
  readonly pollIntervalMs?: number;
  readonly retention?: SqliteRetentionOptions;
  /**
   * Most deliveries a subscription leases beyond its free handler slots (its `prefetch`) and keeps
   * in memory until a slot frees, so one write transaction settles and fetches many messages
   * instead of a `prefetch`-sized batch (ADR 0206). The read-ahead starts at 0, grows while the
   * handlers keep up and drops back to 0 when they stall. Buffered deliveries are leased like
   * handed-out ones: `stats()` counts them in flight, and after a crash they come back with an
   * attempt counted that never ran. 0 turns read-ahead off. Default 32, at most 1024.
   */
  readonly bufferSize?: number;
  /**
   * Called with errors of the background work (polling, lease renewal, retention), which has no
   * caller to reject. Default: `process.emitWarning`.
   */
  readonly onError?: (error: Error) => void;
}

export interface ResolvedConnectionOptions {
  readonly path: string;
  readonly busyTimeoutMs: number;
  readonly synchronous: 'normal' | 'full';
}

export interface ResolvedTransportOptions extends ResolvedConnectionOptions {
  readonly visibilityTimeoutMs: number;
  readonly pollIntervalMs: number;
  readonly retention: { readonly maxAgeMs: number; readonly maxMessages: number };
  readonly bufferSize: number;
  readonly onError: (error: Error) => void;
}

const CONNECTION_KEYS = ['path', 'busyTimeoutMs', 'synchronous'];
const TRANSPORT_KEYS = [
  ...CONNECTION_KEYS,
  'visibilityTimeoutMs',
  'pollIntervalMs',
  'retention',
  'bufferSize',
  'onError',
];

/** Validates connection options; every problem is a ConfigError naming the field. */
export function resolveConnectionOptions(
  options: SqliteConnectionOptions,
  allowedKeys: readonly string[] = CONNECTION_KEYS,
): ResolvedConnectionOptions {
  if (typeof options !== 'object' || options === null) {
    throw new ConfigError('options', 'must be an object like { path: ".herald/events.db" }');
  }
  for (const key of Object.keys(options)) {
    if (!allowedKeys.includes(key))
      throw new ConfigError(key, `is not an option; known options: ${allowedKeys.join(', ')}`);
  }
  if (typeof options.path !== 'string' || options.path.trim().length === 0) {
    throw new ConfigError('path', 'must be the path of the database file, e.g. ".herald/events.db"');
  }
  const synchronous = options.synchronous ?? 'normal';
  if (synchronous !== 'normal' && synchronous !== 'full') {
    throw new ConfigError(
      'synchronous',
      `must be "normal" or "full", got ${JSON.stringify(options.synchronous)}`,
    );
  }
  return {
    path: options.path,
    busyTimeoutMs: integer('busyTimeoutMs', options.busyTimeoutMs, 5000, 0),
    synchronous,
  };
}

/** Validates transport options; every problem is a ConfigError naming the field. */
export function resolveTransportOptions(options: SqliteTransportOptions): ResolvedTransportOptions {
  const connection = resolveConnectionOptions(options, TRANSPORT_KEYS);
  const retention = options.retention ?? {};
  if (typeof retention !== 'object' || retention === null) {
    throw new ConfigError('retention', 'must be an object like { maxAgeMs: 86400000, maxMessages: 1000000 }');
  }
  for (const key of Object.keys(retention)) {
    if (key !== 'maxAgeMs' && key !== 'maxMessages') {
      throw new ConfigError(`retention.${key}`, 'is not an option; known options: maxAgeMs, maxMessages');
    }
  }
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new ConfigError('onError', 'must be a function');
  }
  const bufferSize = integer('bufferSize', options.bufferSize, 32, 0);
  if (bufferSize > 1024) throw new ConfigError('bufferSize', `must be at most 1024, got ${bufferSize}`);
  return {
    ...connection,
    visibilityTimeoutMs: integer('visibilityTimeoutMs', options.visibilityTimeoutMs, 30_000, 100),
    pollIntervalMs: integer('pollIntervalMs', options.pollIntervalMs, 100, 1),
    retention: {
      maxAgeMs: integerOrInfinity('retention.maxAgeMs', retention.maxAgeMs, 86_400_000),
      maxMessages: integerOrInfinity('retention.maxMessages', retention.maxMessages, Infinity),
    },
    bufferSize,
    onError: options.onError ?? ((error) => process.emitWarning(error)),
  };
}

function integer(field: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) {
    throw new ConfigError(field, `must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

function integerOrInfinity(field: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (value === Infinity) return value;
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(field, `must be an integer >= 1 or Infinity, got ${String(value)}`);
  }
  return value;
}
