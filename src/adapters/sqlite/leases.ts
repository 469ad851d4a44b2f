import type { Message } from '../../transport/transport.js';

/** A message leased to one member. */
export interface LeasedMessage {
  readonly seq: number;
  readonly attempt: number;
  readonly message: Message;
}

/** What one member asks a fetch for. */
export interface FetchRequest {
  readonly topicId: number;
  readonly groupId: number;
  /** Most messages to lease: the member's free prefetch slots, capped per transaction. */
  readonly limit: number;
  /** Per-key hold-back (ordering 'key'). */
  readonly byKey: boolean;
  /** This fetch's lease token, unique per fetch; it starts with `holder`. */
  readonly token: string;
  /** The lease-token prefix of every fetch of this transport instance (one process's share of the group). */
  readonly holder: string;
  readonly leaseUntil: number;
}

export interface FetchResult {
  readonly leased: LeasedMessage[];
  /** Earliest time a waiting (nacked with delay) message of the group becomes visible, if any. */
  readonly nextVisibleAt: number | undefined;
  /**
   * How many log rows this fetch held back behind a pending message of the same key; undefined
   * when it did not read the log (pending messages filled it, or it found nothing to do).
   */
  readonly heldBack: number | undefined;
  /**
   * Of those, how many were held back behind a key whose earliest pending message is leased to
   * another transport instance (another process): the group's keys are shared out (ADR 0206).
   */
  readonly heldByOthers: number | undefined;
}

/**
 * Running counts of what one transport instance's consumer transactions did, for telling why
 * consumers are slow (several processes of one group meeting each other's keys and the write lock,
 * ADR 0207). Diagnostics: the set of fields may change between versions.
 */
export interface SqliteTransportCounters {
  /** Fetch and settle write transactions committed. */
  transactions: number;
  /** Attempts that found the write lock held by another connection and were retried later. */
  lockMisses: number;
  /** Milliseconds from a first lock miss to the attempt that then got the lock (or failed), summed. */
  lockWaitMs: number;
  /** Fetches run (alone or with settles). */
  fetches: number;
  /** Fetches that leased nothing. */
  emptyFetches: number;
  /** Messages leased from the log past the group's cursor. */
  leasedFromLog: number;
  /** Messages leased from pending rows (held back before, retried, or expired). */
  leasedFromPending: number;
  /** Log rows read by fetches. */
  scanned: number;
  /** Log rows recorded held back behind a pending row of their key. */
  heldBack: number;
  /** Of those, rows whose key's earliest pending row was leased to another transport instance. */
  heldByOthers: number;
  /** Settlements (acks, nacks, releases) committed. */
  settled: number;
}

/** One ack, nack or release of a lease. */
export interface Settlement {
  readonly groupId: number;
  readonly seq: number;
  readonly token: string;
  readonly how: 'ack' | 'nack' | 'release';
  /** For nack: when the message becomes visible again. */
  readonly visibleAt: number;
}
