import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { redisStores, type RedisStores } from '../../src/adapters/redis/index.js';
import { SqliteDeadLetterStore } from '../../src/adapters/sqlite/index.js';
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from '../../src/adapters/sqlite/schema.js';
import { DeadLetterIndex, type ConsoleFilter } from '../../src/console/index.js';
import { groupsFromCounts } from '../../src/console/dead-letter-index.js';
import type { DeadLetterEntry, DeadLetterStore } from '../../src/store/dead-letter-store.js';
import { needs } from '../support/services.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';

/**
 * Redis keeps per-dimension zsets moved by its add/remove scripts. The same comparison, plus
 * randomized add/replace/remove/purge sequences and entries written in the layout of a Herald
 * without counts (raw commands) that are indexed on first use.
 *
 * SQLite answers failure groups from its fingerprint column and covering index (ADR 0973): the
 * answer must equal the console index's, for every filter the store takes; rows written before
 * the column existed (a schema-2 file written with plain SQL) get their fingerprint on first use.
 */

// Checked before any suite runs: the SQLite cases block the event loop longer than the probe's timeout.
const redisReachable = await needs('redis');

const GROUPS = ['billing', 'mail', 'search'];
const REASONS = ['max-attempts', 'schema', 'permanent'] as const;
const ERRORS = [
  (i: number) => ({
    name: 'Error',
    message: `Order ord-${i} not found`,
    stack: `Error: x\n    at find (/app/orders.ts:${10 + (i % 3)}:5)`,
  }),
  (i: number) => ({
    name: 'TypeError',
    message: `Cannot read properties of undefined (reading 'total')`,
    stack: `TypeError: x\n    at sum (/app/sum.ts:4:${i % 9})`,
  }),
  (i: number) => ({ name: 'Error', message: `Upstream returned 503 after ${i} ms` }),
  (i: number) => ({
    name: 'Error',
    message: `Upstream returned 503 after ${i} ms`,
    stack: 'Error: x\n    at other (/app/b.ts:1:1)',
  }),
];

function entry(i: number, base: number): DeadLetterEntry {
  const group = GROUPS[i % GROUPS.length]!;
  const id = `m-${i}`;
  return {
    id: `${group}:${id}`,
    reason: REASONS[i % REASONS.length]!,
    message: {
      id,
      key: `c-${i % 4}`,
      headers: { 'content-type': 'application/json' },
      body: new TextEncoder().encode('{}'),
    },
    topic: i % 2 ? 'orders' : 'payments',
    group,
    handler: group,
    ...(i % 5 ? { eventType: `t${i % 3}` } : {}),
    error: ERRORS[i % ERRORS.length]!(i),
    attempts: 3,
    firstFailedAt: base + i,
    lastFailedAt: base + i,
    deadLetteredAt: base + i * 7,
  };
}

const FILTERS: ConsoleFilter[] = [
  {},
  { group: 'mail' },
  { topic: 'orders', reason: 'schema' },
  { eventType: 't1' },
  { handler: 'search', since: 1_000_000 + 700, until: 1_000_000 + 2100 },
];

describe('failure groups counted by the SQLite store', () => {
  let dir: string;
  before(() => void (dir = mkdtempSync(join(tmpdir(), 'herald-failures-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('equal the index groups for every store filter, fingerprint filter included', async () => {
    const store = new SqliteDeadLetterStore({ path: join(dir, 'a.db') });
    try {
      for (let i = 0; i < 600; i++) await store.add(entry(i, 1_000_000));
      const index = new DeadLetterIndex(store);
      await index.fresh();
      const all = index.groups({});
      assert.ok(all.length >= 4, `${all.length} groups`);
      for (const f of [...FILTERS, { fingerprint: all[1]!.fingerprint, group: 'billing' }]) {
        const fromStore = groupsFromCounts(await store.failureCounts(f));
        assert.deepEqual(fromStore, index.groups(f), JSON.stringify(f));
      }
    } finally {
      await store.close();
    }
  });

  test('a schema-2 file: migrated to the column, old rows get their fingerprint', async () => {
    const file = join(dir, 'old.db');
    // Written with the driver alone, as Herald before schema version 3 left it.
    const raw = new Database(file);
    raw.exec(MIGRATIONS[0]!);
    raw.exec(MIGRATIONS[1]!);
    raw.pragma(`application_id = ${APPLICATION_ID}`);
    raw.pragma('user_version = 2');
    const insert = raw.prepare(
      `INSERT INTO herald_dead_letters (id, reason, topic, grp, handler, event_type, dead_lettered_at, entry, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const old = Array.from({ length: 1500 }, (_, i) => entry(i, 2_000_000));
    for (const e of old) {
      const { body, ...message } = e.message;
      insert.run(
        e.id,
        e.reason,
        e.topic,
        e.group,
        e.handler,
        e.eventType ?? null,
        e.deadLetteredAt,
        JSON.stringify({ ...e, message }),
        Buffer.from(body),
      );
    }
    raw.close();

    const store = new SqliteDeadLetterStore({ path: file });
    try {
      await store.add(entry(5000, 2_000_000));
      const index = new DeadLetterIndex(store);
      await index.fresh();
      const fromStore = groupsFromCounts(await store.failureCounts());
      assert.deepEqual(fromStore, index.groups({}));
      assert.equal(
        fromStore.reduce((n, g) => n + g.count, 0),
        1501,
      );
      const check = new Database(file, { readonly: true });
      assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      assert.equal(
        (
          check.prepare('SELECT count(*) AS n FROM herald_dead_letters WHERE fingerprint IS NULL').get() as {
            n: number;
          }
        ).n,
        0,
      );
      check.close();
    } finally {
      await store.close();
    }
  });
});

/** The console index's groups for `filter`, from a fresh read of every entry. */
async function recount(store: DeadLetterStore, filter: ConsoleFilter) {
  const index = new DeadLetterIndex(store);
  await index.fresh();
  return index.groups(filter);
}

/** Same answer as the index, for `filter` and every FILTERS entry. */
async function assertSameGroups(store: DeadLetterStore, extra: ConsoleFilter[] = []): Promise<void> {
  const index = new DeadLetterIndex(store);
  await index.fresh();
  for (const f of [...FILTERS, ...extra]) {
    assert.deepEqual(groupsFromCounts(await store.failureCounts!(f)), index.groups(f), JSON.stringify(f));
  }
}

/** Deterministic PRNG (mulberry32), so a failing sequence replays from its seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('failure groups counted by the Redis store', redisReachable, () => {
  const prefixes: string[] = [];
  const sets: RedisStores[] = [];
  let raw: Redis;
  const fresh = (): { store: RedisStores['deadLetters']; base: string } => {
    const prefix = uniquePrefix('failures');
    prefixes.push(prefix);
    const set = redisStores({ url: SHARED_URL, prefix });
    sets.push(set);
    return { store: set.deadLetters, base: `{${prefix}:dlq}` };
  };
  before(() => void (raw = new Redis(SHARED_URL)));
  after(async () => {
    raw.disconnect();
    await Promise.all(sets.map((s) => s.close()));
    for (const p of prefixes) await dropPrefix(SHARED_URL, p);
  });

  /** Every id is in exactly one dimension zset, and the registry names exactly the non-empty ones. */
  async function assertKeysConsistent(base: string): Promise<void> {
    const entries = await raw.hlen(`${base}:e`);
    assert.equal(await raw.hlen(`${base}:d`), entries, 'dimension map size');
    const dims = await raw.hkeys(`${base}:fr`);
    let total = 0;
    for (const d of dims) {
      const n = await raw.zcard(`${base}:f:${d}`);
      assert.ok(n > 0, `registered dimension ${d} is empty`);
      total += n;
    }
    assert.equal(total, entries, 'ids over all dimension zsets');
    // The whole keyspace: one SCAN call covers only part of it when the shared server holds more.
    const stray: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${base}:f:*`, 'COUNT', 10_000);
      stray.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    assert.equal(stray.length, dims.length, 'dimension zsets without a registry entry');
  }

  test('equal the index groups for every store filter, fingerprint filter included', async () => {
    const { store, base } = fresh();
    for (let i = 0; i < 600; i++) await store.add(entry(i, 1_000_000));
    const all = await recount(store, {});
    assert.ok(all.length >= 4, `${all.length} groups`);
    await assertSameGroups(store, [{ fingerprint: all[1]!.fingerprint, group: 'billing' }]);
    await assertKeysConsistent(base);
  });

  test('randomized add, replace, remove and purge sequences never drift from a recount', async () => {
    const seed = Number(process.env['FAILURE_COUNTS_SEED'] ?? Date.now() % 100_000);
    const rnd = random(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const { store, base } = fresh();
    for (let round = 0; round < 8; round++) {
      for (let step = 0; step < 40; step++) {
        const r = rnd();
        const i = Math.floor(rnd() * 120);
        if (r < 0.55) {
          // Ids repeat (i < 120): a re-add replaces the entry, maybe with another error, reason or time.
          const e = entry(i, 1_000_000 + Math.floor(rnd() * 3) * 50);
          await store.add({
            ...e,
            error: ERRORS[Math.floor(rnd() * ERRORS.length)]!(i),
            reason: pick(REASONS),
          });
        } else if (r < 0.8) {
          const ids = Array.from(
            { length: 1 + Math.floor(rnd() * 4) },
            () => entry(Math.floor(rnd() * 140), 0).id,
          );
          await store.remove(ids);
        } else if (r < 0.97) {
          await store.purge(pick(FILTERS.slice(1)));
        } else {
          await store.purge();
        }
      }
      // Keys first: failureCounts repairs a size mismatch (entries from an older Herald), which
      // would hide a script that forgot to move the counts.
      const check = async (): Promise<void> => {
        await assertKeysConsistent(base);
        const all = await recount(store, {});
        await assertSameGroups(store, all[0] ? [{ fingerprint: all[0].fingerprint }] : []);
      };
      await check().catch((e: unknown) => {
        throw new Error(`seed ${seed} (FAILURE_COUNTS_SEED), round ${round}: ${String(e)}`);
      });
    }
  });

  test('entries written without counts (raw commands, the old layout) are indexed on first use', async () => {
    const { store, base } = fresh();
    // As a Herald without failure counts left them: entry, index member, listing zset only.
    const old = Array.from({ length: 1500 }, (_, i) => entry(i, 2_000_000));
    const pipe = raw.pipeline();
    for (const e of old) {
      const member = `${String(e.deadLetteredAt).padStart(15, '0')}\u0000${e.id}`;
      const json = JSON.stringify({
        ...e,
        message: { ...e.message, body: Buffer.from(e.message.body).toString('base64') },
      });
      pipe.hset(`${base}:e`, e.id, json).hset(`${base}:m`, e.id, member).zadd(`${base}:z`, 0, member);
    }
    await pipe.exec();
    await store.add(entry(5000, 2_000_000));
    // An older Herald removes an indexed and an unindexed entry without touching the counts: the
    // first pass indexes the old entries, the second drops the id whose entry is gone.
    await store.add(entry(5001, 2_000_000));
    for (const id of [entry(5001, 0).id, old[3]!.id]) {
      const m = await raw.hget(`${base}:m`, id);
      await raw.multi().hdel(`${base}:e`, id).hdel(`${base}:m`, id).zrem(`${base}:z`, m!).exec();
    }
    const fromStore = groupsFromCounts(await store.failureCounts());
    assert.deepEqual(fromStore, await recount(store, {}));
    assert.equal(
      fromStore.reduce((n, g) => n + g.count, 0),
      1500,
    );
    await assertKeysConsistent(base);
    await assertSameGroups(store);
  });
});
