import {
  decodeCursor,
  encodeCursor,
  type DeadLetterFilter,
  type DeadLetterStore,
  type FailureCounts,
} from '../store/dead-letter-store.js';
import { summarizeDeadLetters, type DeadLetterSummary } from '../store/dead-letter-summary.js';
import { fingerprint } from './fingerprint.js';

/** The store's filter plus what the console searches on. */
export interface ConsoleFilter extends DeadLetterFilter {
  /** Case-insensitive substring of the error name or message. */
  readonly errorText?: string;
  readonly aggregateId?: string;
  readonly eventId?: string;
  /** A failure group (see `fingerprint`). */
  readonly fingerprint?: string;
  /** Free text: case-insensitive substring of ids, type, group, topic or error. */
  readonly q?: string;
}

export interface IndexedLetter extends DeadLetterSummary {
  readonly fingerprint: string;
}

/** Dead letters that failed the same way. */
export interface FailureGroup {
  readonly fingerprint: string;
  readonly errorName: string;
  /** The message of the most recent failure in the group. */
  readonly sample: string;
  /** The top stack frame of that same failure. */
  readonly stackTop?: string;
  readonly count: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** Entries per consumer group, per event type and per reason. */
  readonly groups: Record<string, number>;
  readonly eventTypes: Record<string, number>;
  readonly reasons: Record<string, number>;
}

interface Row {
  readonly letter: IndexedLetter;
  /** Lower-cased text searched by `q` and `errorText`. */
  readonly text: string;
  readonly errorText: string;
}

const PAGE = 1000;

/**
 * An in-memory index of the DLQ's summaries, so search, filters and grouping over 100,000 dead letters
 * answer in milliseconds on any store. It stays fresh by reading only what was added since the last
 * look (keyset cursors make that one query) and rebuilds when the store's count disagrees (entries
 * removed elsewhere) or after `rebuildEveryMs`. Mutations made through the console update it at once.
 */
export class DeadLetterIndex {
  private rows = new Map<string, Row>();
  private sorted: Row[] = [];
  private sortedValid = true;
  private tail: { at: number; id: string } | undefined;
  private checkedAt = 0;
  private rebuiltAt = 0;
  private running: Promise<void> | undefined;

  constructor(
    private readonly store: DeadLetterStore,
    private readonly options: { staleMs?: number; rebuildEveryMs?: number } = {},
  ) {}

  get size(): number {
    return this.rows.size;
  }

  /** Brings the index up to date unless it was checked within `staleMs` (default 100 ms). */
  async fresh(force = false): Promise<void> {
    if (!force && Date.now() - this.checkedAt < (this.options.staleMs ?? 100)) return;
    this.running ??= this.refresh().finally(() => (this.running = undefined));
    await this.running;
  }

  /** Drops entries removed through the console (replayed, purged). */
  forget(ids: Iterable<string>): void {
    for (const id of ids) if (this.rows.delete(id)) this.sortedValid = false;
  }

  private async refresh(): Promise<void> {
    const rebuildEvery = this.options.rebuildEveryMs ?? 60_000;
    if (this.rebuiltAt === 0 || Date.now() - this.rebuiltAt > rebuildEvery) {
      await this.rebuild();
    } else {
      await this.readTail();
      const total = await this.store.count();
      if (total !== this.rows.size) await this.rebuild();
    }
    this.checkedAt = Date.now();
  }

  private async rebuild(): Promise<void> {
    const rows = new Map<string, Row>();
    let cursor: string | undefined;
    let last: DeadLetterSummary | undefined;
    do {
      const page = await summarizeDeadLetters(this.store, undefined, { limit: PAGE, cursor });
      for (const s of page.items) rows.set(s.id, toRow(s));
      last = page.items[page.items.length - 1] ?? last;
      cursor = page.nextCursor;
    } while (cursor);
    this.rows = rows;
    this.sorted = [...rows.values()];
    this.sortedValid = true;
    this.tail = last && { at: last.deadLetteredAt, id: last.id };
    this.rebuiltAt = Date.now();
  }

  private async readTail(): Promise<void> {
    let cursor = this.tail && encodeCursor(this.tail.at, this.tail.id);
    for (;;) {
      const page = await summarizeDeadLetters(this.store, undefined, {
        limit: PAGE,
        ...(cursor ? { cursor } : {}),
      });
      for (const s of page.items) {
        const replaced = this.rows.has(s.id);
        const row = toRow(s);
        this.rows.set(s.id, row);
        if (replaced) this.sortedValid = false;
        else if (this.sortedValid) this.sorted.push(row);
        this.tail = { at: s.deadLetteredAt, id: s.id };
      }
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
    }
  }

  /** Every row in listing order (deadLetteredAt, then id). */
  private ordered(): Row[] {
    if (!this.sortedValid) {
      this.sorted = [...this.rows.values()].sort((a, b) => compare(a.letter, b.letter));
      this.sortedValid = true;
    }
    return this.sorted;
  }

  /** One page of matching entries, oldest first, and how many match in all. */
  page(
    filter: ConsoleFilter,
    request: { limit?: number; cursor?: string; newestFirst?: boolean } = {},
  ): { items: IndexedLetter[]; total: number; nextCursor?: string } {
    const limit = Math.min(Math.max(1, Math.floor(request.limit ?? 50)), 1000);
    const after = decodeCursor(request.cursor);
    const match = matcher(filter);
    const all = this.ordered();
    const items: IndexedLetter[] = [];
    let total = 0;
    let more = false;
    const step = request.newestFirst ? -1 : 1;
    for (let i = request.newestFirst ? all.length - 1 : 0; i >= 0 && i < all.length; i += step) {
      const row = all[i]!;
      if (!match(row)) continue;
      total++;
      if (after) {
        const c = compare(row.letter, { deadLetteredAt: after.at, id: after.id });
        if (request.newestFirst ? c >= 0 : c <= 0) continue;
      }
      if (items.length < limit) items.push(row.letter);
      else more = true;
    }
    const last = items[items.length - 1];
    return more && last
      ? { items, total, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items, total };
  }

  /** Every matching entry, oldest first. */
  select(filter: ConsoleFilter): IndexedLetter[] {
    const match = matcher(filter);
    return this.ordered()
      .filter(match)
      .map((r) => r.letter);
  }

  get(id: string): IndexedLetter | undefined {
    return this.rows.get(id)?.letter;
  }

  /** Matching entries grouped by failure fingerprint, largest group first. */
  groups(filter: ConsoleFilter): FailureGroup[] {
    const match = matcher(filter);
    const out = new Map<string, MutableGroup>();
    for (const row of this.ordered()) {
      if (!match(row)) continue;
      const l = row.letter;
      let g = out.get(l.fingerprint);
      if (!g) {
        g = {
          fingerprint: l.fingerprint,
          errorName: l.errorName,
          sample: l.errorMessage,
          ...(l.stackTop !== undefined ? { stackTop: l.stackTop } : {}),
          count: 0,
          firstSeen: l.deadLetteredAt,
          lastSeen: l.deadLetteredAt,
          byGroup: new Map(),
          byType: new Map(),
          byReason: new Map(),
        };
        out.set(l.fingerprint, g);
      }
      g.count++;
      if (l.deadLetteredAt >= g.lastSeen) {
        g.lastSeen = l.deadLetteredAt;
        g.sample = l.errorMessage;
        // The stack top of the same (newest) failure as the sample; it can differ only by line.
        if (l.stackTop !== undefined) g.stackTop = l.stackTop;
        else delete g.stackTop;
      }
      if (l.deadLetteredAt < g.firstSeen) g.firstSeen = l.deadLetteredAt;
      bump(g.byGroup, l.group);
      bump(g.byType, l.eventType ?? '(unknown)');
      bump(g.byReason, l.reason);
    }
    return finish(out.values());
  }

  /** Distinct (topic, group) pairs with dead letters, and how many each. */
  pairs(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { letter } of this.rows.values()) {
      const k = `${letter.topic}\u0000${letter.group}`;
      out.set(k, (out.get(k) ?? 0) + 1);
    }
    return out;
  }
}

type GroupBase = Omit<FailureGroup, 'groups' | 'eventTypes' | 'reasons'>;
type MutableGroup = { -readonly [K in keyof GroupBase]: GroupBase[K] } & {
  byGroup: Map<string, number>;
  byType: Map<string, number>;
  byReason: Map<string, number>;
};

function bump(map: Map<string, number>, key: string, n = 1): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

function finish(groups: Iterable<MutableGroup>): FailureGroup[] {
  return [...groups]
    .map(({ byGroup, byType, byReason, ...g }) => ({
      ...g,
      groups: Object.fromEntries(byGroup),
      eventTypes: Object.fromEntries(byType),
      reasons: Object.fromEntries(byReason),
    }))
    .sort((a, b) => b.count - a.count || b.lastSeen - a.lastSeen);
}

/** The filter fields every store answers (list, count, failureCounts); any other one needs the index. */
const STORE_FIELDS = new Set([
  'group',
  'topic',
  'eventType',
  'handler',
  'reason',
  'since',
  'until',
  'fingerprint',
]);

/**
 * The filter as the store takes it, when it has only fields every store filters on (group, topic,
 * event type, handler, reason, time, fingerprint); `undefined` when it needs the index (free text,
 * error text, aggregate or event id).
 */
export function storeFilter(filter: ConsoleFilter): DeadLetterFilter | undefined {
  return Object.entries(filter).every(([k, v]) => v === undefined || STORE_FIELDS.has(k))
    ? filter
    : undefined;
}

/** True when `failureCounts` of the store can answer this filter without the index. */
export function storeCanGroup(store: DeadLetterStore, filter: ConsoleFilter): boolean {
  return typeof store.failureCounts === 'function' && storeFilter(filter) !== undefined;
}

/** A store's summary as the index holds it: with its failure fingerprint. */
export function indexed(s: DeadLetterSummary): IndexedLetter {
  return { ...s, fingerprint: fingerprint(s.errorName, s.errorMessage, s.stackTop) };
}

/** Failure groups from a store's counts: the same answer as `DeadLetterIndex.groups`. */
export function groupsFromCounts(result: FailureCounts): FailureGroup[] {
  const samples = new Map(result.samples.map((s) => [s.fingerprint, s]));
  const out = new Map<string, MutableGroup>();
  for (const c of result.counts) {
    let g = out.get(c.fingerprint);
    if (!g) {
      const sample = samples.get(c.fingerprint);
      g = {
        fingerprint: c.fingerprint,
        errorName: sample?.errorName ?? '',
        sample: sample?.message ?? '',
        ...(sample?.stackTop !== undefined ? { stackTop: sample.stackTop } : {}),
        count: 0,
        firstSeen: c.firstSeen,
        lastSeen: c.lastSeen,
        byGroup: new Map(),
        byType: new Map(),
        byReason: new Map(),
      };
      out.set(c.fingerprint, g);
    }
    g.count += c.count;
    g.firstSeen = Math.min(g.firstSeen, c.firstSeen);
    g.lastSeen = Math.max(g.lastSeen, c.lastSeen);
    bump(g.byGroup, c.group, c.count);
    bump(g.byType, c.eventType ?? '(unknown)', c.count);
    bump(g.byReason, c.reason, c.count);
  }
  return finish(out.values());
}

function toRow(s: DeadLetterSummary): Row {
  const letter = indexed(s);
  const errorText = `${s.errorName}: ${s.errorMessage}`.toLowerCase();
  return {
    letter,
    errorText,
    text: `${s.id}\n${s.eventId}\n${s.aggregateId ?? ''}\n${s.eventType ?? ''}\n${s.group}\n${s.topic}\n${s.handler}\n${letter.fingerprint}\n${errorText}`.toLowerCase(),
  };
}

function compare(
  a: { deadLetteredAt: number; id: string },
  b: { deadLetteredAt: number; id: string },
): number {
  return a.deadLetteredAt - b.deadLetteredAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Only the fields that are set are tested: an empty filter costs nothing per row. */
function matcher(f: ConsoleFilter): (row: Row) => boolean {
  const tests: ((row: Row) => boolean)[] = [];
  const eq = <K extends keyof IndexedLetter>(key: K, value: IndexedLetter[K] | undefined): void => {
    if (value !== undefined) tests.push((r) => r.letter[key] === value);
  };
  eq('group', f.group);
  eq('topic', f.topic);
  eq('eventType', f.eventType);
  eq('handler', f.handler);
  eq('reason', f.reason);
  eq('aggregateId', f.aggregateId);
  eq('eventId', f.eventId);
  eq('fingerprint', f.fingerprint);
  const { since, until } = f;
  if (since !== undefined) tests.push((r) => r.letter.deadLetteredAt >= since);
  if (until !== undefined) tests.push((r) => r.letter.deadLetteredAt < until);
  const err = f.errorText?.toLowerCase();
  if (err !== undefined) tests.push((r) => r.errorText.includes(err));
  const q = f.q?.toLowerCase();
  if (q !== undefined) tests.push((r) => r.text.includes(q));
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (row) => tests.every((t) => t(row));
}
