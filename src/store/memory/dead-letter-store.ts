import {
  matchesDeadLetterFilter,
  pageInMemory,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
  type DeadLetterStore,
  type Page,
} from '../dead-letter-store.js';

/** Dead-letter store in process memory, for tests and single-process apps. */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly entries = new Map<string, DeadLetterEntry>();

  async add(entry: DeadLetterEntry): Promise<void> {
    this.entries.set(entry.id, structuredClone(entry));
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const e = this.entries.get(id);
    return e && structuredClone(e);
  }

  async list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>> {
    const found = pageInMemory(this.entries.values(), filter, page);
    return { ...found, items: found.items.map((e) => structuredClone(e)) };
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
}
