import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { redisStores, type RedisStores } from '../../src/adapters/redis/index.js';
import { SqliteDeadLetterStore } from '../../src/adapters/sqlite/index.js';
import { DeadLetterIndex, type ConsoleFilter } from '../../src/console/index.js';
import { ConsoleService } from '../../src/console/service.js';
import { DeadLetterAdmin } from '../../src/core/dead-letters.js';
import { errorFingerprint } from '../../src/store/dead-letter-fingerprint.js';
import type { DeadLetterEntry, DeadLetterStore } from '../../src/store/dead-letter-store.js';
import { MemoryDeadLetterStore, MemoryTransport } from '../../src/index.js';
import { dropPrefix, SHARED_URL, uniquePrefix } from '../adapters/redis/harness.js';
import { needs } from '../support/services.js';

/*
 * ADR 0975: list pages, dry runs, replays, purges and exports whose filter has only store fields
 * are answered by the store, a page at a time, never by reading the whole DLQ into the console's
 * index; and they answer exactly what the index answers.
 */

const redisReachable = await needs('redis');

const N = 2_000;
const GROUPS = ['billing', 'mail', 'search', 'audit'];
const ERRORS = [
  (i: number) => ({
    name: 'Error',
    message: `Order ord-${i} not found`,
    stack: 'Error: x\n    at find (/a.ts:1:1)',
  }),
  (i: number) => ({ name: 'TypeError', message: `Cannot read 'total' of ${i % 2 ? 'null' : 'undefined'}` }),
  (i: number) => ({ name: 'Error', message: `Upstream returned 503 after ${i} ms` }),
];

function entry(i: number): DeadLetterEntry {
  const group = GROUPS[i % GROUPS.length]!;
  return {
    id: `${group}:m-${String(i).padStart(5, '0')}`,
    reason: i % 7 === 0 ? 'schema' : 'max-attempts',
    message: {
      id: `m-${i}`,
      key: `c-${i % 9}`,
      headers: { 'content-type': 'application/json' },
      body: new TextEncoder().encode(JSON.stringify({ type: 't', payload: { i } })),
    },
    topic: i % 2 ? 'orders' : 'payments',
    group,
    handler: group,
    eventType: `t${i % 3}`,
    error: ERRORS[i % ERRORS.length]!(i),
    attempts: 3,
    firstFailedAt: 1_000_000 + i,
    lastFailedAt: 1_000_000 + i,
    // Three entries per millisecond: pages must break ties by id in both orders.
    deadLetteredAt: 1_000_000 + Math.floor(i / 3),
  };
}

/** The store, counting the entries each read method hands out. */
function spy(store: DeadLetterStore): { store: DeadLetterStore; read: { rows: number; gets: number } } {
  const read = { rows: 0, gets: 0 };
  const wrapped = new Proxy(store, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      if (key === 'list' || key === 'summaries')
        return async (...args: unknown[]) => {
          const page = (await fn.apply(target, args)) as { items: unknown[] };
          read.rows += page.items.length;
          return page;
        };
      if (key === 'get')
        return async (...args: unknown[]) => {
          read.gets++;
          return fn.apply(target, args);
        };
      return fn.bind(target);
    },
  });
  return { store: wrapped, read };
}

/** Stores that count failure groups: the console then never builds its index for store fields. */
const counts = (store: DeadLetterStore): boolean => typeof store.failureCounts === 'function';

function cases(name: string, open: () => Promise<DeadLetterStore>, options: { skip?: string } = {}): void {
  describe(`console pages from the store: ${name}`, options, () => {
    const stores: DeadLetterStore[] = [];
    const make = async (): Promise<DeadLetterStore> => {
      const store = await open();
      stores.push(store);
      for (let i = 0; i < N; i += 200)
        await Promise.all(Array.from({ length: 200 }, (_, k) => store.add(entry(i + k))));
      return store;
    };
    const service = (store: DeadLetterStore): ConsoleService =>
      new ConsoleService({
        deadLetters: new DeadLetterAdmin(store, new MemoryTransport()),
        transport: new MemoryTransport(),
      });
    after(async () => {
      for (const s of stores) await s.close?.();
    });

    test('list pages, totals and dry runs of store fields read a page, not the DLQ, and equal the index', async () => {
      const raw = await make();
      const { store, read } = spy(raw);
      const console = service(store);
      const reference = new DeadLetterIndex(raw);
      await reference.fresh();
      const fp = errorFingerprint(entry(1).error);
      const filters: ConsoleFilter[] = [
        {},
        { group: 'mail' },
        { fingerprint: fp },
        { group: 'billing', reason: 'schema' },
        { topic: 'orders', since: 1_000_100, until: 1_000_400 },
      ];
      for (const filter of filters) {
        for (const newestFirst of [true, false]) {
          let cursor: string | undefined;
          for (let p = 0; p < 2; p++) {
            const page = { limit: 100, newestFirst, ...(cursor ? { cursor } : {}) };
            const got = await console.list(filter, page);
            assert.deepEqual(
              got,
              reference.page(filter, page),
              `${JSON.stringify(filter)} ${JSON.stringify(page)}`,
            );
            cursor = got.nextCursor;
            if (!cursor) break;
          }
        }
        const dry = await console.dryRun({ filter });
        const expected = reference.select(filter).reduce(
          (d, l) => {
            d.count++;
            d.groups[l.group] = (d.groups[l.group] ?? 0) + 1;
            d.topics[l.topic] = (d.topics[l.topic] ?? 0) + 1;
            d.failureGroups[l.fingerprint] = (d.failureGroups[l.fingerprint] ?? 0) + 1;
            return d;
          },
          {
            count: 0,
            groups: {} as Record<string, number>,
            topics: {} as Record<string, number>,
            failureGroups: {} as Record<string, number>,
            notFound: 0,
          },
        );
        assert.deepEqual({ ...dry, notFound: 0 }, { ...expected, notFound: 0 }, JSON.stringify(filter));
      }
      if (counts(raw)) {
        // 5 filters × 2 orders × at most 2 pages of 100 (+1 look-ahead each); no dry run reads
        // entries when the store counts failure groups.
        assert.ok(read.rows <= filters.length * 2 * 2 * 101, `${read.rows} entries read`);
        assert.equal(console.index.size, 0, 'the index was built');
      }
      console.close();
    });

    test('free text, error text and id searches answer what the index answers (store search: no index)', async () => {
      const raw = await make();
      await raw.add({
        ...entry(N),
        id: 'mail:umlaut',
        error: {
          name: 'RangeError',
          message: 'Größe des ÉTATS ungültig',
          stack: 'RangeError: x\n    at s (/s.ts:1:1)',
        },
      });
      const { store } = spy(raw);
      const console = service(store);
      const reference = new DeadLetterIndex(raw);
      await reference.fresh();
      const filters: ConsoleFilter[] = [
        { q: 'm-1003' },
        { q: 'ÉtaTs' },
        { q: 'MAIL' },
        { errorText: 'upstream returned 503' },
        { errorText: 'not found', group: 'billing' },
        { aggregateId: 'c-4' },
        { eventId: 'm-17' },
        { q: errorFingerprint(entry(1).error), since: 1_000_100 },
        { q: 'nothing matches this' },
      ];
      for (const filter of filters) {
        for (const newestFirst of [true, false]) {
          let cursor: string | undefined;
          for (let p = 0; p < 3; p++) {
            const page = { limit: 50, newestFirst, ...(cursor ? { cursor } : {}) };
            const got = await console.list(filter, page);
            assert.deepEqual(
              got,
              reference.page(filter, page),
              `${JSON.stringify(filter)} ${JSON.stringify(page)}`,
            );
            cursor = got.nextCursor;
            if (!cursor) break;
          }
        }
      }
      assert.equal((await console.list({ q: 'ÉtaTs' }, {})).total, 1);
      if (typeof raw.search === 'function') assert.equal(console.index.size, 0, 'the index was built');
      console.close();
    });

    test('dry runs, groups, export, purge and replay by a search equal the index (store search: no index)', async () => {
      const raw = await make();
      await raw.add({
        ...entry(N),
        id: 'mail:umlaut',
        error: { name: 'RangeError', message: 'Größe des ÉTATS ungültig' },
      });
      const { store } = spy(raw);
      const console = service(store);
      const reference = new DeadLetterIndex(raw);
      await reference.fresh();
      const filters: ConsoleFilter[] = [
        { q: 'm-100' },
        { q: 'ÉtaTs' },
        { errorText: 'not found', group: 'billing' },
        { aggregateId: 'c-4' },
        { aggregateId: 'c-4', reason: 'schema', since: 1_000_100 },
        { eventId: 'm-17' },
        { q: 'nothing matches this' },
      ];
      for (const filter of filters) {
        const dry = await console.dryRun({ filter });
        const expected = { count: 0, groups: {}, topics: {}, failureGroups: {}, notFound: 0 } as {
          count: number;
          groups: Record<string, number>;
          topics: Record<string, number>;
          failureGroups: Record<string, number>;
          notFound: number;
        };
        for (const l of reference.select(filter)) {
          expected.count++;
          expected.groups[l.group] = (expected.groups[l.group] ?? 0) + 1;
          expected.topics[l.topic] = (expected.topics[l.topic] ?? 0) + 1;
          expected.failureGroups[l.fingerprint] = (expected.failureGroups[l.fingerprint] ?? 0) + 1;
        }
        assert.deepEqual(dry, expected, `dry run ${JSON.stringify(filter)}`);
        assert.deepEqual(
          await console.groups(filter),
          reference.groups(filter),
          `groups ${JSON.stringify(filter)}`,
        );
      }
      const lines: string[] = [];
      for await (const line of console.export({ aggregateId: 'c-4', reason: 'schema' })) lines.push(line);
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { id: string }).id),
        reference.select({ aggregateId: 'c-4', reason: 'schema' }).map((l) => l.id),
      );
      assert.ok(lines.length > 0);
      const who = { actor: 'test' };
      const selection = { filter: { aggregateId: 'c-5', errorText: 'upstream' } };
      const n = reference.select(selection.filter).length;
      assert.ok(n > 0);
      await assert.rejects(console.purge(selection, n + 1, who), /now holds/);
      assert.deepEqual(await console.purge(selection, n, who), { purged: n });
      assert.equal((await console.list(selection.filter, {})).total, 0);
      const replayed = await console.replay({ filter: { q: 'ÉTATS' } }, who);
      assert.deepEqual(replayed, { replayed: 1, failed: 0, notFound: 0 });
      assert.equal(await raw.get('mail:umlaut'), undefined);
      assert.equal(console.audit.list(10).length, 2);
      if (typeof raw.searchKeys === 'function') assert.equal(console.index.size, 0, 'the index was built');
      console.close();
    });

    test('replay and purge by a store filter page through the store; ids are read by id', async () => {
      const raw = await make();
      const { store, read } = spy(raw);
      const console = service(store);
      const who = { actor: 'test' };
      const dry = await console.dryRun({ filter: { group: 'audit', reason: 'schema' } });
      assert.ok(dry.count > 0);
      await assert.rejects(
        console.purge({ filter: { group: 'audit', reason: 'schema' } }, dry.count + 1, who),
        /now holds/,
      );
      assert.deepEqual(
        await console.purge({ filter: { group: 'audit', reason: 'schema' } }, dry.count, who),
        { purged: dry.count },
      );
      assert.equal(await raw.count({ group: 'audit', reason: 'schema' }), 0);
      const ids = [entry(1).id, entry(2).id, 'nope:1'];
      const byId = await console.dryRun({ ids });
      assert.equal(byId.count, 2);
      assert.equal(byId.notFound, 1);
      assert.equal(read.gets, 3);
      const replayed = await console.replay(
        { filter: { fingerprint: errorFingerprint(entry(2).error), group: 'search' } },
        who,
      );
      assert.equal(replayed.failed, 0);
      assert.ok(replayed.replayed > 0);
      assert.equal(await raw.count({ fingerprint: errorFingerprint(entry(2).error), group: 'search' }), 0);
      assert.equal(console.audit.list(10).length, 2);
      if (counts(raw)) assert.equal(console.index.size, 0, 'the index was built');
      // Free text still works: the store searches it (SQLite) or the index is built on first use.
      const found = await console.list({ q: 'm-1003' }, {});
      assert.equal(found.total, 1);
      assert.equal(found.items[0]!.id, entry(1003).id);
      assert.equal(console.index.size > 0, typeof raw.search !== 'function');
      console.close();
    });

    test('export by a store filter reads the matching entries only', async () => {
      const raw = await make();
      const { store, read } = spy(raw);
      const console = service(store);
      const lines: string[] = [];
      for await (const line of console.export({ group: 'mail', reason: 'schema' })) lines.push(line);
      const expected = await raw.count({ group: 'mail', reason: 'schema' });
      assert.equal(lines.length, expected);
      if (counts(raw)) {
        assert.ok(read.rows <= expected + 1, `${read.rows} entries read for ${expected}`);
        assert.equal(console.index.size, 0);
      }
      console.close();
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'herald-console-pages-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
cases('sqlite', async () => new SqliteDeadLetterStore({ path: join(dir, `dlq-${++files}.db`) }));

const prefixes: string[] = [];
const sets: RedisStores[] = [];
after(async () => {
  await Promise.all(sets.map((s) => s.close()));
  for (const p of prefixes) await dropPrefix(SHARED_URL, p);
});
cases(
  'redis',
  async () => {
    const prefix = uniquePrefix('console-pages');
    prefixes.push(prefix);
    const set = redisStores({ url: SHARED_URL, prefix });
    sets.push(set);
    return set.deadLetters;
  },
  redisReachable,
);
cases('memory', async () => new MemoryDeadLetterStore());
