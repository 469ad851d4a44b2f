import type { Message } from '../transport/transport.js';

/** One committed, unsent outbox row. */
export interface OutboxRow {
  /** Position in the outbox: the relay publishes in this order. */
  readonly position: number;
  readonly topic: string;
  readonly message: Message;
}

/** How far behind the relay is. */
export interface OutboxLag {
  /** Committed rows not yet sent. */
  readonly pending: number;
  /** Age of the oldest unsent row in ms (0 when none). */
  readonly oldestAgeMs: number;
}

/**
 * Where a relay reads: one outbox table in one database. Implemented by `herald/postgres` and
 * `herald/sqlite`; the relay knows nothing else of the database.
 */
export interface OutboxSource {
  /** For errors and health checks, e.g. `postgres outbox herald.outbox`. */
  readonly name: string;
  /**
   * Tries to become (or stay) the one relay forwarding this outbox; true while it is. Several
   * relays may run; the others stand by, so rows are not sent twice in the normal case.
   */
  acquire(): Promise<boolean>;
  /** Gives up the relay role (on stop) so a standby takes over at once. */
  release(): Promise<void>;
  /** The oldest unsent rows, at most `limit`, in position order. */
  claim(limit: number): Promise<OutboxRow[]>;
  /** Marks rows sent (they are kept for a while, then deleted by `cleanup`). */
  markSent(rows: readonly OutboxRow[]): Promise<void>;
  /** Deletes rows sent more than `olderThanMs` ago; returns how many. */
  cleanup(olderThanMs: number): Promise<number>;
  lag(): Promise<OutboxLag>;
  /** Resolves when new rows may have been committed, or after `maxMs`, or when `signal` aborts. */
  waitForWork(maxMs: number, signal: AbortSignal): Promise<void>;
  /** Closes connections the source opened. */
  close(): Promise<void>;
}
