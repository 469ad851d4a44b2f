import { Connection, type NatsStatus } from '../connection.js';
import { Names } from '../names.js';
import { integer, validateConnectionOptions, type NatsConnectionOptions } from '../options.js';
import { ConfigError } from '../../../core/errors.js';
import { NatsDeadLetterStore } from './dead-letter-store.js';
import { NatsEventStore } from './event-store.js';
import { StoreHandles } from './handles.js';
import { NatsIdempotencyStore } from './idempotency-store.js';

export { NatsDeadLetterStore, NatsEventStore, NatsIdempotencyStore };

export interface NatsStoresOptions extends NatsConnectionOptions {
  /** `file` (default) or `memory`. */
  readonly storage?: 'file' | 'memory';
  /** Copies in a cluster. Default 1. */
  readonly replicas?: number;
  /** Upper bound on how long an idempotency entry is kept, whatever its TTL. Default 7 days. */
  readonly idempotencyMaxAgeMs?: number;
  /** Re-appends of an event id within this window are skipped. Default 24 h. */
  readonly eventsDuplicateWindowMs?: number;
  /** Open only what exists; create no stream or bucket. */
  readonly mustExist?: boolean;
}

/** The NATS stores, sharing one connection. */
export interface NatsStores {
  readonly deadLetters: NatsDeadLetterStore & { close(): Promise<void> };
  readonly idempotency: NatsIdempotencyStore & { close(): Promise<void> };
  readonly events: NatsEventStore & { close(): Promise<void> };
  status(): NatsStatus;
  /** Closes the shared connection (also happens once each store has been closed). */
  close(): Promise<void>;
}

const FIELDS = [
  'servers',
  'connection',
  'namespace',
  'connectTimeoutMs',
  'onError',
  'storage',
  'replicas',
  'idempotencyMaxAgeMs',
  'eventsDuplicateWindowMs',
  'mustExist',
];

/**
 * The dead-letter, idempotency and event stores on one NATS connection: KV buckets `<ns>-dlq` and
 * `<ns>-idempotency`, stream `<ns>-events`. See docs/adapters/nats.md.
 */
export function natsStores(options: NatsStoresOptions = {}): NatsStores {
  const namespace = validateConnectionOptions(options, FIELDS);
  if (options.storage !== undefined && options.storage !== 'file' && options.storage !== 'memory')
    throw new ConfigError('storage', `must be "file" or "memory", got ${JSON.stringify(options.storage)}`);
  const connection = new Connection(options, 'herald nats stores');
  const handles = new StoreHandles(connection, new Names(namespace), {
    storage: options.storage ?? 'file',
    replicas: integer('replicas', options.replicas, 1, 1),
    idempotencyMaxAgeMs: integer('idempotencyMaxAgeMs', options.idempotencyMaxAgeMs, 1000, 7 * 86_400_000),
    eventsDuplicateWindowMs: integer(
      'eventsDuplicateWindowMs',
      options.eventsDuplicateWindowMs,
      100,
      86_400_000,
    ),
    mustExist: options.mustExist ?? false,
  });
  let open = 3;
  const closeOne = async (): Promise<void> => {
    if (--open === 0) await connection.close();
  };
  const closable = <S extends object>(store: S): S & { close(): Promise<void> } => {
    let closed = false;
    return Object.assign(store, {
      close: async () => {
        if (closed) return;
        closed = true;
        await closeOne();
      },
    });
  };
  return {
    deadLetters: closable(new NatsDeadLetterStore(handles)),
    idempotency: closable(new NatsIdempotencyStore(handles)),
    events: closable(new NatsEventStore(handles, connection)),
    status: () => connection.status(),
    close: () => connection.close(),
  };
}
