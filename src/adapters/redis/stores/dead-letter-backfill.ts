import type { DeadLetterEntry } from '../../../store/dead-letter-store.js';
import type { RedisClient } from '../connection.js';

/** Entries read, and ids checked, per script call: Redis is never blocked for long. */
const BATCH = 1000;

/** A hash kept per dead-letter id next to the entries (failure dimensions, search records). */
export interface DerivedIndex {
  readonly client: RedisClient;
  /** The listing index (`time\0id` members) and the entries hash. */
  readonly keys: { readonly index: string; readonly entries: string };
  /** The derived hash: one field per entry id it covers. */
  readonly derived: string;
  /** Script arguments that index one entry (pushed onto `args`). */
  readonly argsFor: (id: string, entry: DeadLetterEntry, args: (string | number)[]) => void;
  /** Runs the index script with the collected arguments. */
  readonly index: (args: (string | number)[]) => Promise<unknown>;
  /** Runs the script that drops the given ids where their entry is gone. */
  readonly dropOrphans: (ids: string[]) => Promise<unknown>;
}

/**
 * Brings a derived hash in line with the entries: indexes entries it lacks (written by a Herald
 * without it), walking the listing index `BATCH` ids at a time, then, if it still covers more ids
 * than there are entries (removed by such a Herald), drops those.
 */
export async function reconcileDerived(d: DerivedIndex): Promise<void> {
  const { client, keys } = d;
  let min = '-';
  for (;;) {
    const members = await client.zrangebylex(keys.index, min, '+', 'LIMIT', 0, BATCH);
    if (members.length === 0) break;
    const ids = members.map((m) => m.slice(m.indexOf('\u0000') + 1));
    const have = await client.hmget(d.derived, ...ids);
    const missing = ids.filter((_, i) => have[i] === null);
    if (missing.length > 0) {
      const values = await client.hmget(keys.entries, ...missing);
      const args: (string | number)[] = [];
      values.forEach((json, i) => {
        if (json !== null) d.argsFor(missing[i]!, JSON.parse(json) as DeadLetterEntry, args);
      });
      if (args.length > 0) await d.index(args);
    }
    if (members.length < BATCH) break;
    min = `(${members[members.length - 1]!}`;
  }
  const [entries, covered] = await Promise.all([client.hlen(keys.entries), client.hlen(d.derived)]);
  if (covered <= entries) return;
  let cursor = '0';
  do {
    const [next, flat] = await client.hscan(d.derived, cursor, 'COUNT', BATCH);
    cursor = next;
    const ids = flat.filter((_, i) => i % 2 === 0);
    if (ids.length > 0) await d.dropOrphans(ids);
  } while (cursor !== '0');
}
