/** Outcome of trying to reserve a key before processing. */
export type ReserveResult =
  /** Nobody processed it: go ahead, then `complete` (or `release` on failure). */
  | 'acquired'
  /** Someone is processing it right now (their reservation has not expired). */
  | 'in-progress'
  /** Already processed successfully: skip it. */
  | 'done';

/**
 * Remembers which events a consumer group has processed, so redeliveries are not processed twice.
 * A reservation is a short lease (a crashed processor's lease expires and another may take over);
 * completion is remembered for the long TTL.
 */
export interface IdempotencyStore {
  /** Atomically reserves `key` for `leaseMs` unless it is reserved or done. */
  reserve(key: string, leaseMs: number): Promise<ReserveResult>;
  /** Marks `key` done for `ttlMs`. */
  complete(key: string, ttlMs: number): Promise<void>;
  /** Drops a reservation after a failure so a retry can reserve again. */
  release(key: string): Promise<void>;
  close?(): Promise<void>;
}
