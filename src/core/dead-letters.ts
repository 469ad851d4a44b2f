import { Headers } from '../contracts/headers.js';
import type { Observers } from './observer.js';
import type {
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterStore,
  DeadLetterPageRequest,
  Page,
} from '../store/dead-letter-store.js';
import type { Transport } from '../transport/transport.js';

/** What to replay: entry ids, or every entry matching a filter. */
export type ReplaySelection = readonly string[] | { readonly filter: DeadLetterFilter };

export interface ReplayResult {
  readonly replayed: number;
  /** Entries that could not be republished; they stay in the DLQ. */
  readonly failed: readonly { readonly id: string; readonly error: string }[];
}

/**
 * The operator's API over the dead-letter store (not a queue itself): inspect, replay, purge. A replay republishes the
 * original message, byte for byte, to its original topic, marked so that only the group that
 * dead-lettered it processes it again (other groups already handled it); attempts start over.
 * The entry is removed only after the transport accepted the message.
 */
export class DeadLetterAdmin {
  constructor(
    readonly store: DeadLetterStore,
    private readonly transport: Transport,
    private readonly observers?: Observers,
  ) {}

  /** A page of entries, oldest first unless `page.order` is `newest` (keyset cursors, as the store's). */
  list(filter?: DeadLetterFilter, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>> {
    return this.store.list(filter, page);
  }

  get(id: string): Promise<DeadLetterEntry | undefined> {
    return this.store.get(id);
  }

  count(filter?: DeadLetterFilter): Promise<number> {
    return this.store.count(filter);
  }

  purge(filter?: DeadLetterFilter): Promise<number> {
    return this.store.purge(filter);
  }

  async replay(
    selection: ReplaySelection,
    options: { onProgress?: (done: number, total: number) => void; batchSize?: number } = {},
  ): Promise<ReplayResult> {
    const entries = await this.select(selection);
    const failed: { id: string; error: string }[] = [];
    let replayed = 0;
    const batchSize = options.batchSize ?? 100;
    for (let i = 0; i < entries.length; i += batchSize) {
      const batch = entries.slice(i, i + batchSize);
      const byTopic = new Map<string, DeadLetterEntry[]>();
      for (const e of batch) {
        let list = byTopic.get(e.topic);
        if (!list) byTopic.set(e.topic, (list = []));
        list.push(e);
      }
      for (const [topic, list] of byTopic) {
        try {
          await this.transport.publish(
            topic,
            list.map((e) => ({
              ...e.message,
              headers: { ...e.message.headers, [Headers.replayGroup]: e.group },
            })),
          );
          replayed += await this.store.remove(list.map((e) => e.id));
        } catch (err) {
          for (const e of list) failed.push({ id: e.id, error: (err as Error).message });
          this.observers?.emit('onError', { error: err as Error, where: 'dead-letter replay' });
        }
      }
      options.onProgress?.(Math.min(i + batchSize, entries.length), entries.length);
    }
    return { replayed, failed };
  }

  private async select(selection: ReplaySelection): Promise<DeadLetterEntry[]> {
    if (Array.isArray(selection)) {
      const found = await Promise.all((selection as readonly string[]).map((id) => this.store.get(id)));
      return found.filter((e): e is DeadLetterEntry => e !== undefined);
    }
    const out: DeadLetterEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.store.list((selection as { filter: DeadLetterFilter }).filter, {
        limit: 1000,
        cursor,
      });
      out.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }
}

/** @deprecated Renamed {@link DeadLetterAdmin}: an admin API over the store, not a queue. */
export const DeadLetterQueue = DeadLetterAdmin;
/** @deprecated Renamed {@link DeadLetterAdmin}. */
export type DeadLetterQueue = DeadLetterAdmin;
