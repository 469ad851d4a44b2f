import {
  matchesDeadLetterFilter,
  pageInMemory,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterPageRequest,
  type DeadLetterStore,
  type Page,
} from '../../../store/dead-letter-store.js';
import type { StoreHandles } from './handles.js';
import { encodeKey } from './idempotency-store.js';

type Stored = Omit<DeadLetterEntry, 'message'> & {
  message: Omit<DeadLetterEntry['message'], 'body'> & { body: string };
};

/**
 * Dead letters in the KV bucket `<ns>-dlq`, one entry per dead letter (key: the entry id in
 * base64url), the body in base64. Listing and counting read the bucket and filter in the process:
 * fine for the thousands of entries a dead-letter queue should hold, not for millions.
 */
export class NatsDeadLetterStore implements DeadLetterStore {
  constructor(private readonly h: StoreHandles) {}

  async add(entry: DeadLetterEntry): Promise<void> {
    const kv = (await this.h.get()).deadLetters;
    const stored: Stored = {
      ...entry,
      message: { ...entry.message, body: Buffer.from(entry.message.body).toString('base64') },
    };
    await kv.put(encodeKey(entry.id), JSON.stringify(stored));
  }

  async get(id: string): Promise<DeadLetterEntry | undefined> {
    const kv = (await this.h.get()).deadLetters;
    const e = await kv.get(encodeKey(id));
    if (!e || e.operation !== 'PUT' || e.length === 0) return undefined;
    return decode(e.string());
  }

  async list(filter: DeadLetterFilter = {}, page?: DeadLetterPageRequest): Promise<Page<DeadLetterEntry>> {
    return pageInMemory(await this.all(), filter, page);
  }

  async count(filter: DeadLetterFilter = {}): Promise<number> {
    return (await this.all()).filter((e) => matchesDeadLetterFilter(e, filter)).length;
  }

  async remove(ids: readonly string[]): Promise<number> {
    const kv = (await this.h.get()).deadLetters;
    let removed = 0;
    for (const id of ids) {
      const k = encodeKey(id);
      const e = await kv.get(k);
      if (!e || e.operation !== 'PUT' || e.length === 0) continue;
      await kv.purge(k);
      removed++;
    }
    return removed;
  }

  async purge(filter: DeadLetterFilter = {}): Promise<number> {
    const matching = (await this.all()).filter((e) => matchesDeadLetterFilter(e, filter));
    return this.remove(matching.map((e) => e.id));
  }

  private async all(): Promise<DeadLetterEntry[]> {
    const kv = (await this.h.get()).deadLetters;
    const keys: string[] = [];
    for await (const k of await kv.keys()) keys.push(k);
    const entries = await Promise.all(keys.map((k) => kv.get(k)));
    return entries.filter((e) => e && e.operation === 'PUT' && e.length > 0).map((e) => decode(e!.string()));
  }
}

function decode(json: string): DeadLetterEntry {
  const s = JSON.parse(json) as Stored;
  return { ...s, message: { ...s.message, body: new Uint8Array(Buffer.from(s.message.body, 'base64')) } };
}
