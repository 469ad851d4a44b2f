import {
  decodeCursor,
  encodeCursor,
  matchesDeadLetterFilter,
  pageLimit,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterStore,
  type Page,
  type PageRequest,
} from '../dead-letter-store.js';

/** Dead-letter store in process memory, for tests and single-process apps. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly entries = new Map<string, DeadLetterEntry>();

  async add(entry: DeadLetterEntry): Promise<void> {
    this.entries.delete(entry.id); // re-insert so iteration order follows deadLetteredAt
    this.entries.set(entry.id, structuredClone(entry));
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const e = this.entries.get(id);
    return e && structuredClone(e);
  }

  async list(filter?: DeadLetterFilter, page?: PageRequest): Promise<Page<DeadLetterEntry>> {
    const limit = pageLimit(page);
    const after = decodeCursor(page?.cursor);
    const sorted = this.sorted().filter(
      (e) =>
        matchesDeadLetterFilter(e, filter) &&
        (!after || e.deadLetteredAt > after.at || (e.deadLetteredAt === after.at && e.id > after.id)),
    );
    const items = sorted.slice(0, limit).map((e) => structuredClone(e));
    const last = items[items.length - 1];
    return sorted.length > limit && last
      ? { items, nextCursor: encodeCursor(last.deadLetteredAt, last.id) }
      : { items };
  }

  async count(filter?: DeadLetterFilter): Promise<number> {
    let n = 0;
    for (const e of this.entries.values()) if (matchesDeadLetterFilter(e, filter)) n++;
    return n;
  }

  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) if (this.entries.delete(id)) n++;
    return n;
  }

  async purge(filter?: DeadLetterFilter): Promise<number> {
    const ids = [...this.entries.values()].filter((e) => matchesDeadLetterFilter(e, filter)).map((e) => e.id);
    return this.remove(ids);
  }

  private sorted(): DeadLetterEntry[] {
    return [...this.entries.values()].sort(
      (a, b) => a.deadLetteredAt - b.deadLetteredAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
  }
}
