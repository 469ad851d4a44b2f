import type { Redis } from 'ioredis';

/**
 * Deletes every key a bench run created under `prefix`: the transport's `<prefix>:…` keys and the
 * stores' `{<prefix>:…}` ones (hash-tagged so a cluster keeps them on one slot). SCAN + UNLINK, so
 * a large backlog is freed without blocking the server.
 */
export async function removeKeys(admin: Redis, prefix: string): Promise<void> {
  for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.unlink(...keys);
    } while (cursor !== '0');
  }
}
