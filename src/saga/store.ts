import type { SagaRecord, SagaStatus } from './record.js';

/**
 * Writes the store applies in the same transaction as a step's completion: a better-sqlite3
 * `Database` for the SQLite store, a RedisSagaTx (queue commands with `call`) for the Redis store,
 * a MemorySagaTx (queue writes with `push`) for the memory store. An effect must be synchronous.
 */
export type SagaEffect<Tx = unknown> = (tx: Tx) => void;

export interface SagaCommitOptions<Tx = unknown> {
  /** Extend the lease to now + `leaseMs`; 0 releases it with the write. */
  readonly leaseMs: number;
  readonly effects?: readonly SagaEffect<Tx>[];
}

export interface SagaFilter {
  readonly type?: string;
  readonly status?: SagaStatus;
}

export interface SagaPage {
  readonly items: SagaRecord[];
  /** Pass back as `cursor` for the next page; absent on the last page. */
  readonly nextCursor?: string;
}

/**
 * Durable saga state with a lease per saga. Implement it (and prove it with
 * `runSagaStoreSuite` from `herald/saga/testing`) to keep sagas in another database.
 *
 * Leases: at most one owner at a time; an expired lease may be taken by anyone. `commit` is fenced:
 * it writes only when `owner` still holds the lease (or held it last and nobody took it since) and
 * the stored version equals `record.version`, otherwise it throws SagaLeaseLostError and writes
 * nothing (effects included).
 */
export interface SagaStore<Tx = unknown> {
  /** Short name for logs, e.g. `memory`, `sqlite`, `redis`. */
  readonly name: string;
  /** Inserts a new saga (version 0, no lease). Resolves false when a saga with this id exists. */
  create(record: SagaRecord): Promise<boolean>;
  get(id: string): Promise<SagaRecord | undefined>;
  /**
   * Takes the lease of one saga for `leaseMs` when it is free, expired or already `owner`'s.
   * Resolves the record with its lease, or undefined when another owner holds it or the saga does
   * not exist (tell them apart with `get`).
   */
  acquire(id: string, owner: string, leaseMs: number): Promise<SagaRecord | undefined>;
  /**
   * Leases up to `limit` sagas of the given types that are due (`wakeAt` <= now) and not leased
   * (by anyone, `owner` included) or whose lease expired, earliest first.
   */
  claimDue(owner: string, leaseMs: number, limit: number, types: readonly string[]): Promise<SagaRecord[]>;
  /**
   * Writes `record` (expected at `record.version`; stored as version + 1) and its effects in one
   * transaction, fenced by the lease. Mutates `record.version` (and `lease`) on success.
   */
  commit(record: SagaRecord, owner: string, options: SagaCommitOptions<Tx>): Promise<void>;
  /** Extends `owner`'s lease; false when it was lost. */
  renew(id: string, owner: string, leaseMs: number): Promise<boolean>;
  /** Drops `owner`'s lease (no-op when it is not theirs). */
  release(id: string, owner: string): Promise<void>;
  /** Newest first. */
  list(filter?: SagaFilter, page?: { limit?: number; cursor?: string }): Promise<SagaPage>;
  close(): Promise<void>;
}
