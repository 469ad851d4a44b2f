import { ConfigError } from '../contracts/errors.js';
import type { Message } from '../contracts/message.js';
import { errorFingerprint } from './dead-letter-fingerprint.js';

/** Why a message was dead-lettered. */
export type DeadLetterReason =
  /** The handler kept failing until `retry.maxAttempts`. */
  | 'max-attempts'
  /** The body could not be decoded into an envelope: retrying cannot help. */
  | 'decode'
  /** The payload failed its event schema: retrying cannot help. */
  | 'schema'
  /** The handler threw an error marked as permanent (not retryable). */
  | 'permanent';

/** A message that could not be processed, with everything needed to understand and replay it. */
export interface DeadLetterEntry {
  /** `<group>:<message id>`: a message dead-lettered twice by one group is stored once. */
  readonly id: string;
  readonly reason: DeadLetterReason;
  /** The original message, byte for byte, so a replay is exactly what was published. */
  readonly message: Message;
  readonly topic: string;
  readonly group: string;
  readonly handler: string;
  /** Event type when the message could be decoded far enough to know it. */
  readonly eventType?: string;
  readonly error: { readonly name: string; readonly message: string; readonly stack?: string };
  readonly attempts: number;
  /** Epoch milliseconds. */
  readonly firstFailedAt: number;
  readonly lastFailedAt: number;
  readonly deadLetteredAt: number;
}

export interface DeadLetterFilter {
  readonly group?: string;
  readonly topic?: string;
  readonly eventType?: string;
  readonly handler?: string;
  readonly reason?: DeadLetterReason;
  /** deadLetteredAt >= since (epoch ms). */
  readonly since?: number;
  /** deadLetteredAt < until (epoch ms). */
  readonly until?: number;
  /**
   * Entries of one failure group: `errorFingerprint(entry.error)` (see `dead-letter-fingerprint.ts`).
   * Stores that keep the fingerprint with the entry (SQLite, PostgreSQL, Redis) answer it from an
   * index; the others compute it per entry.
   */
  readonly fingerprint?: string;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  readonly nextCursor?: string;
}

export interface PageRequest {
  /** 1..1000, default 100. */
  readonly limit?: number;
  readonly cursor?: string;
}

/**
 * A page of dead letters. Its own type, not a field of {@link PageRequest}, because event stores
 * page by position in one direction only and would ignore an order.
 */
export interface DeadLetterPageRequest extends PageRequest {
  /**
   * `oldest` (the default) lists by (deadLetteredAt, id) ascending, `newest` descending. A cursor
   * continues in the order of the request it is passed with: the next page holds the entries after
   * (oldest) or before (newest) the last one returned.
   */
  readonly order?: 'oldest' | 'newest';
}

/**
 * Where messages go when they cannot be processed. Entries are listed by deadLetteredAt, then id:
 * oldest first unless the page asks for `order: 'newest'`.
 */
export interface DeadLetterStore {
  /** Stores an entry; an entry with the same id replaces the earlier one (idempotent on redelivery). */
  add(entry: DeadLetterEntry): Promise<void>;
  get(id: string): Promise<DeadLetterEntry | undefined>;
  list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>>;
  count(filter?: DeadLetterFilter): Promise<number>;
  /** Removes the given entries; returns how many existed. */
  remove(ids: readonly string[]): Promise<number>;
  /** Removes every entry matching the filter (all entries without one); returns how many. */
  purge(filter?: DeadLetterFilter): Promise<number>;
  /**
   * Optional: the same page as `list`, without message bodies and with only what search and
   * grouping need (see {@link DeadLetterSummary}). Stores that can read less than whole entries
   * implement it; callers fall back to `list` (see `summarizeDeadLetters`).
   */
  summaries?(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterSummary>>;
  /**
   * Optional: entries counted per failure fingerprint (see `fingerprint` in
   * `dead-letter-fingerprint.ts`), topic, group, event type and reason, with the newest error of
   * each fingerprint. Stores that keep the fingerprint at write time answer it without reading
   * entries, so a console groups a large DLQ without loading it.
   */
  failureCounts?(filter?: DeadLetterFilter): Promise<FailureCounts>;
  /**
   * Optional: a page of summaries matching a search (see {@link DeadLetterSearch}) and how many
   * match in all, as the console's index would answer it. Stores that can match text without
   * loading the DLQ into memory implement it (SQLite: one scan in SQL); the console falls back to
   * its index otherwise.
   */
  search?(
    search: DeadLetterSearch,
    page?: DeadLetterPageRequest,
  ): Promise<Page<DeadLetterSummary> & { readonly total: number }>;
  /**
   * Optional, with `search`: every entry matching a search, oldest first, as the keys a dry run,
   * replay, purge or export needs (see {@link DeadLetterKey}). One pass over the store, where paging
   * through `search` would repeat its scan for every page.
   */
  searchKeys?(search: DeadLetterSearch): Promise<readonly DeadLetterKey[]>;
  close?(): Promise<void>;
}

/** An entry found by `DeadLetterStore.searchKeys`: enough to count, replay or remove it. */
export interface DeadLetterKey {
  readonly id: string;
  readonly deadLetteredAt: number;
  readonly group: string;
  readonly topic: string;
  readonly eventType?: string;
  readonly reason: DeadLetterReason;
  /** `errorFingerprint(entry.error)`. */
  readonly fingerprint: string;
}

/** A filter plus the console's searches: what `DeadLetterStore.search` takes. */
export interface DeadLetterSearch extends DeadLetterFilter {
  /** Case-insensitive substring of `<error name>: <error message>` (the first 500 characters). */
  readonly errorText?: string;
  /** The message key (the aggregate id for events Herald published). */
  readonly aggregateId?: string;
  /** The message id (the event id for events Herald published). */
  readonly eventId?: string;
  /**
   * Case-insensitive substring of the entry id, event id, aggregate id, event type, group, topic,
   * handler, fingerprint or `<error name>: <error message>`.
   */
  readonly text?: string;
}

/** Dead letters per failure fingerprint and place: the answer of `DeadLetterStore.failureCounts`. */
export interface FailureCounts {
  readonly counts: readonly {
    readonly fingerprint: string;
    readonly topic: string;
    readonly group: string;
    readonly eventType?: string;
    readonly reason: DeadLetterReason;
    readonly count: number;
    /** deadLetteredAt of the oldest and newest entry counted. */
    readonly firstSeen: number;
    readonly lastSeen: number;
  }[];
  /** The newest matching entry's error, one per fingerprint. */
  readonly samples: readonly {
    readonly fingerprint: string;
    readonly errorName: string;
    readonly message: string;
    readonly stackTop?: string;
  }[];
}

/** Clamps a page request to the documented bounds; shared by every store implementation. */
export function pageLimit(page: PageRequest | undefined): number {
  const limit = page?.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1) return 1;
  return Math.min(limit, 1000);
}

/** The page's order, checked: `'newest'` or `'oldest'` (the default). */
export function pageOrder(page: DeadLetterPageRequest | undefined): 'oldest' | 'newest' {
  const order = page?.order ?? 'oldest';
  if (order !== 'oldest' && order !== 'newest')
    throw new ConfigError('order', "must be 'oldest' or 'newest'");
  return order;
}

/** Listing order of two entries: (deadLetteredAt, id) ascending. */
export function compareDeadLetters(
  a: { readonly deadLetteredAt: number; readonly id: string },
  b: { readonly deadLetteredAt: number; readonly id: string },
): number {
  return a.deadLetteredAt - b.deadLetteredAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * One keyset page of `entries` for stores that filter in the process (memory, NATS): matching
 * entries in the requested order, strictly after the cursor.
 */
export function pageInMemory<T extends DeadLetterEntry>(
  entries: Iterable<T>,
  filter: DeadLetterFilter | undefined,
  page: DeadLetterPageRequest | undefined,
): Page<T> {
  const limit = pageLimit(page);
  const after = decodeCursor(page?.cursor);
  const sign = pageOrder(page) === 'newest' ? -1 : 1;
  const rest: T[] = [];
  for (const e of entries) {
    if (!matchesDeadLetterFilter(e, filter)) continue;
    if (after && sign * compareDeadLetters(e, { deadLetteredAt: after.at, id: after.id }) <= 0) continue;
    rest.push(e);
  }
  rest.sort((a, b) => sign * compareDeadLetters(a, b));
  const items = rest.slice(0, limit);
  const last = items[items.length - 1];
  return rest.length > limit && last
    ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
    : { items };
}

/** True when `entry` satisfies every field set in `filter`. */
export function matchesDeadLetterFilter(entry: DeadLetterEntry, filter: DeadLetterFilter = {}): boolean {
  return (
    (filter.fingerprint === undefined || errorFingerprint(entry.error) === filter.fingerprint) &&
    (filter.group === undefined || entry.group === filter.group) &&
    (filter.topic === undefined || entry.topic === filter.topic) &&
    (filter.eventType === undefined || entry.eventType === filter.eventType) &&
    (filter.handler === undefined || entry.handler === filter.handler) &&
    (filter.reason === undefined || entry.reason === filter.reason) &&
    (filter.since === undefined || entry.deadLetteredAt >= filter.since) &&
    (filter.until === undefined || entry.deadLetteredAt < filter.until)
  );
}

/**
 * Page cursors are the sort key of the last entry returned, so a page boundary stays put while
 * entries are added or removed. Every store encodes them the same way.
 */
export function encodeCursor(at: number, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): { at: number; id: string } | undefined {
  if (cursor === undefined) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [number, string];
    if (typeof at === 'number' && typeof id === 'string') return { at, id };
  } catch {
    // fall through to the error below
  }
  throw new ConfigError('cursor', 'is not a cursor returned by list(); start again without one');
}

/**
 * A dead letter without its body: what searching and grouping a large DLQ need. A few hundred bytes
 * per entry, so 100,000 of them fit comfortably in memory.
 */
export interface DeadLetterSummary {
  readonly id: string;
  readonly reason: DeadLetterEntry['reason'];
  readonly topic: string;
  readonly group: string;
  readonly handler: string;
  readonly eventType?: string;
  /** The message id (the event id for events Herald published). */
  readonly eventId: string;
  /** The message key (the aggregate id for events Herald published). */
  readonly aggregateId?: string;
  readonly errorName: string;
  /** At most `SUMMARY_MESSAGE_MAX` (500) characters. */
  readonly errorMessage: string;
  /** The first `at ...` line of the stack, when there is one. */
  readonly stackTop?: string;
  readonly attempts: number;
  readonly firstFailedAt: number;
  readonly deadLetteredAt: number;
}
