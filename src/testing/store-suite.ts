/**
 * The store conformance suite. Every store implementation runs these same cases:
 *
 *   runStoreSuite('sqlite', { deadLetters: () => ..., idempotency: () => ..., events: () => ... });
 *
 * Each factory call must return a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import {
  ConcurrencyError,
  errorFingerprint,
  uuidv7,
  type DeadLetterEntry,
  type DeadLetterFilter,
  type DeadLetterSearch,
  type DeadLetterStore,
  type EventEnvelope,
  type EventStore,
  type IdempotencyStore,
} from '../index.js';
import { DeadLetterIndex } from '../console/dead-letter-index.js';
import { MemoryDeadLetterStore } from '../store/memory/dead-letter-store.js';
import { sleep } from './wait.js';

export interface StoreHarness {
  deadLetters?: () => Promise<DeadLetterStore>;
  idempotency?: () => Promise<IdempotencyStore>;
  events?: () => Promise<EventStore>;
  cleanup?(): Promise<void>;
}

function entry(n: number, overrides: Partial<DeadLetterEntry> = {}): DeadLetterEntry {
  const id = overrides.id ?? `group-a:msg-${String(n).padStart(4, '0')}`;
  return {
    id,
    reason: 'max-attempts',
    message: {
      id: `msg-${n}`,
      key: `agg-${n % 3}`,
      headers: { 'event-type': 'shop.order.placed', 'content-type': 'application/json' },
      body: new Uint8Array([123, 125, 0, 255, n % 256]),
    },
    topic: 'shop.events',
    group: 'group-a',
    handler: 'billing',
    eventType: 'shop.order.placed',
    error: { name: 'Error', message: `failure ${n}`, stack: `Error: failure ${n}\n    at handler` },
    attempts: 4,
    firstFailedAt: 1_700_000_000_000 + n,
    lastFailedAt: 1_700_000_001_000 + n,
    deadLetteredAt: 1_700_000_002_000 + n,
    ...overrides,
  };
}

/**
 * Entries for the search case: two groups and topics, entries sharing a millisecond (pages break
 * ties by id), a missing aggregate id, and non-ASCII errors whose lower case differs from the ASCII
 * one (`É`, `ß`, a Greek final sigma).
 */
function searchEntries(): DeadLetterEntry[] {
  const errors = [
    (i: number) => ({ name: 'Error', message: `failure ${i}`, stack: `Error: failure ${i}\n    at handler` }),
    () => ({
      name: 'RangeError',
      message: 'Größe des ÉTATS ungültig',
      stack: 'RangeError: x\n    at s (/s.ts:1:1)',
    }),
    (i: number) => ({ name: 'TypeError', message: `Cannot read 'x' of ${i % 2 ? 'null' : 'undefined'}` }),
  ];
  return Array.from({ length: 45 }, (_, i) => {
    const group = i % 2 ? 'group-b' : 'group-a';
    return entry(i, {
      id: `${group}:m-${String(i).padStart(3, '0')}`,
      group,
      handler: i % 2 ? 'billing' : 'mail',
      topic: i % 5 === 0 ? 'other.events' : 'shop.events',
      message: {
        id: `msg-${i}`,
        ...(i % 11 === 4 ? {} : { key: `agg-${i % 4}` }),
        headers: {},
        body: new Uint8Array([i]),
      },
      error: i === 44 ? { name: 'Error', message: 'ΣΊΣΥΦΟΣ failed' } : errors[i % 3]!(i),
      deadLetteredAt: 1_700_000_002_000 + Math.floor(i / 3),
    });
  }).filter((_, i) => i % 3 !== 1 || i === 1 || i === 4);
}

function event(n: number, overrides: Partial<EventEnvelope> = {}): EventEnvelope {
  return {
    id: uuidv7(),
    type: 'shop.order.placed',
    version: 'v1',
    source: 'store-suite',
    aggregateId: 'order-1',
    tenantId: 't1',
    time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    payload: { n, nested: { list: [1, 'two', null] } },
    metadata: { k: 'v' },
    ...overrides,
  };
}

export function runStoreSuite(name: string, harness: StoreHarness): void {
  describe(`store conformance: ${name}`, () => {
    const open: { close?(): Promise<void> }[] = [];
    const track = async <S extends { close?(): Promise<void> }>(s: Promise<S>): Promise<S> => {
      const store = await s;
      open.push(store);
      return store;
    };
    // Each case's stores close when it ends, so a backend with a connection pool per store does
    // not hold every case's connections until the suite is over.
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close?.().catch(() => undefined)));
    });
    after(async () => {
      await Promise.all(open.map((s) => s.close?.().catch(() => undefined)));
      await harness.cleanup?.();
    });

    if (harness.deadLetters) {
      const make = () => track(harness.deadLetters!());

      test('dead letters: add and get keep every field, bytes included', async () => {
        const store = await make();
        const e = entry(1);
        await store.add(e);
        const got = await store.get(e.id);
        assert.ok(got);
        assert.deepEqual(
          { ...got, message: { ...got.message, body: [...got.message.body] } },
          {
            ...e,
            message: { ...e.message, body: [...e.message.body] },
          },
        );
        assert.equal(await store.get('missing'), undefined);
      });

      test('dead letters: adding the same id twice stores one entry (the latest)', async () => {
        const store = await make();
        await store.add(entry(1));
        await store.add(entry(1, { attempts: 9 }));
        assert.equal(await store.count(), 1);
        assert.equal((await store.get(entry(1).id))!.attempts, 9);
      });

      test('dead letters: paging walks every entry once, oldest first', async () => {
        const store = await make();
        const shuffled = Array.from({ length: 250 }, (_, i) => i).sort(() => Math.random() - 0.5);
        for (const i of shuffled) await store.add(entry(i));
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await store.list({}, { limit: 100, cursor });
          seen.push(...page.items.map((e) => e.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor);
        assert.equal(pages, 3);
        assert.deepEqual(
          seen,
          Array.from({ length: 250 }, (_, i) => entry(i).id),
        );
      });

      /** Every page of `filter` in `order`, `limit` per page, as ids. */
      const walk = async (
        store: DeadLetterStore,
        filter: DeadLetterFilter,
        order: 'oldest' | 'newest',
        limit: number,
      ): Promise<string[]> => {
        const seen: string[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.list(filter, { limit, order, ...(cursor ? { cursor } : {}) });
          assert.ok(page.items.length <= limit);
          seen.push(...page.items.map((e) => e.id));
          cursor = page.nextCursor;
        } while (cursor);
        return seen;
      };

      test('dead letters: newest-first and oldest-first paging, entries sharing a time, with and without filters', async () => {
        const store = await make();
        // 7 entries per millisecond, ids not in time order, added shuffled.
        const all = Array.from({ length: 140 }, (_, i) =>
          entry(i, {
            id: `${i % 2 ? 'g1' : 'g0'}:${String((i * 37) % 140).padStart(3, '0')}`,
            group: i % 2 ? 'g1' : 'g0',
            handler: i % 3 ? 'h1' : 'h2',
            deadLetteredAt: 1_700_000_002_000 + Math.floor(i / 7),
          }),
        );
        for (const e of [...all].sort(() => Math.random() - 0.5)) await store.add(e);
        const order = (list: DeadLetterEntry[], newest: boolean): string[] =>
          [...list]
            .sort(
              (a, b) =>
                (newest ? -1 : 1) *
                (a.deadLetteredAt - b.deadLetteredAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
            )
            .map((e) => e.id);
        assert.deepEqual(await walk(store, {}, 'newest', 10), order(all, true));
        assert.deepEqual(await walk(store, {}, 'oldest', 9), order(all, false));
        const g1 = all.filter((e) => e.group === 'g1');
        assert.deepEqual(await walk(store, { group: 'g1' }, 'newest', 4), order(g1, true));
        assert.deepEqual(await walk(store, { group: 'g1' }, 'oldest', 6), order(g1, false));
        const since = 1_700_000_002_003;
        const until = 1_700_000_002_011;
        const ranged = all.filter(
          (e) => e.handler === 'h1' && e.deadLetteredAt >= since && e.deadLetteredAt < until,
        );
        assert.deepEqual(
          await walk(store, { handler: 'h1', since, until }, 'newest', 5),
          order(ranged, true),
        );
        const timed = all.filter((e) => e.deadLetteredAt >= since && e.deadLetteredAt < until);
        assert.deepEqual(await walk(store, { since, until }, 'newest', 5), order(timed, true));
        // A cursor marks a position, not an entry: the one it names can go.
        const first = await store.list({}, { limit: 3, order: 'newest' });
        await store.remove([first.items[2]!.id]);
        const next = await store.list({}, { limit: 3, order: 'newest', cursor: first.nextCursor! });
        assert.deepEqual(
          next.items.map((e) => e.id),
          order(all, true).slice(3, 6),
        );
      });

      test('dead letters: the fingerprint filter selects one failure group in list, count and purge', async () => {
        const store = await make();
        const timeout = (n: number) => ({
          name: 'TimeoutError',
          message: `upstream 10.0.0.${n} timed out after ${n * 10} ms`,
          stack: `TimeoutError: upstream timed out\n    at call (/app/client.ts:${n}:3)`,
        });
        for (let i = 0; i < 30; i++)
          await store.add(
            entry(i, {
              id: `g:${i}`,
              group: i % 2 ? 'g1' : 'g0',
              ...(i % 3 === 0 ? { error: timeout(i) } : {}),
              deadLetteredAt: 1_700_000_002_000 + Math.floor(i / 4),
            }),
          );
        const fp = errorFingerprint(timeout(1));
        assert.equal(errorFingerprint(timeout(2)), fp);
        assert.notEqual(errorFingerprint(entry(1).error), fp);
        const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3 === 0);
        assert.equal(await store.count({ fingerprint: fp }), expected.length);
        assert.equal(
          await store.count({ fingerprint: fp, group: 'g1' }),
          expected.filter((i) => i % 2).length,
        );
        assert.equal(await store.count({ fingerprint: 'f00000000000' }), 0);
        assert.deepEqual(
          await walk(store, { fingerprint: fp }, 'newest', 3),
          [...expected].reverse().map((i) => `g:${i}`),
        );
        assert.deepEqual(
          await walk(store, { fingerprint: fp }, 'oldest', 4),
          expected.map((i) => `g:${i}`),
        );
        assert.equal(
          await store.purge({ fingerprint: fp, group: 'g0' }),
          expected.filter((i) => i % 2 === 0).length,
        );
        assert.equal(await store.count({ fingerprint: fp }), expected.filter((i) => i % 2).length);
        assert.equal(await store.count(), 30 - expected.filter((i) => i % 2 === 0).length);
      });

      test('dead letters: an unknown order is rejected with a clear error', async () => {
        const store = await make();
        await assert.rejects(
          store.list({}, { order: 'sideways' as 'newest' }),
          (err: Error & { field?: string }) => /order/.test(err.message),
        );
      });

      test('dead letters: filters and counts by every field', async () => {
        const store = await make();
        for (let i = 0; i < 12; i++) {
          await store.add(
            entry(i, {
              id: `g${i % 2}:m${i}`,
              group: `g${i % 2}`,
              topic: i < 6 ? 'a.events' : 'b.events',
              eventType: i % 3 === 0 ? 'a.x.y' : 'a.x.z',
              handler: i % 4 === 0 ? 'h1' : 'h2',
              reason: i === 11 ? 'decode' : 'max-attempts',
            }),
          );
        }
        assert.equal(await store.count(), 12);
        assert.equal(await store.count({ group: 'g0' }), 6);
        assert.equal(await store.count({ topic: 'b.events' }), 6);
        assert.equal(await store.count({ eventType: 'a.x.y' }), 4);
        assert.equal(await store.count({ handler: 'h1' }), 3);
        assert.equal(await store.count({ reason: 'decode' }), 1);
        assert.equal(await store.count({ group: 'g1', topic: 'a.events' }), 3);
        const since = entry(4).deadLetteredAt;
        const until = entry(8).deadLetteredAt;
        assert.equal(await store.count({ since, until }), 4);
        const listed = await store.list({ group: 'g1', topic: 'b.events' });
        assert.deepEqual(
          listed.items.map((e) => e.id),
          ['g1:m7', 'g1:m9', 'g1:m11'],
        );
      });

      test('dead letters: remove and purge report how many went', async () => {
        const store = await make();
        for (let i = 0; i < 10; i++)
          await store.add(entry(i, { group: i < 4 ? 'keep' : 'drop', id: `x:${i}` }));
        assert.equal(await store.remove(['x:0', 'x:1', 'nope']), 2);
        assert.equal(await store.purge({ group: 'drop' }), 6);
        assert.equal(await store.count(), 2);
        assert.equal(await store.purge(), 2);
        assert.equal(await store.count(), 0);
      });

      test('dead letters: 50 concurrent adds are all kept', async () => {
        const store = await make();
        await Promise.all(Array.from({ length: 50 }, (_, i) => store.add(entry(i))));
        assert.equal(await store.count(), 50);
      });

      test('dead letters: a foreign cursor is rejected with a clear error', async () => {
        const store = await make();
        await assert.rejects(store.list({}, { cursor: 'not-a-cursor' }), /cursor/);
      });

      test('dead letters: search answers what the console index answers, pages, totals and keys', async (t) => {
        const store = await make();
        if (typeof store.search !== 'function') {
          t.skip('the store has no search()');
          return;
        }
        const find = store.search.bind(store);
        const reference = new MemoryDeadLetterStore();
        const entries = searchEntries();
        for (const e of entries) {
          await store.add(e);
          await reference.add(e);
        }
        // A replace moves the entry's ids and text: the old ones must no longer match.
        const replaced = {
          ...entries[5]!,
          message: { ...entries[5]!.message, id: 'moved', key: 'elsewhere' },
        };
        await store.add(replaced);
        await reference.add(replaced);
        await store.remove([entries[6]!.id]);
        await reference.remove([entries[6]!.id]);
        const index = new DeadLetterIndex(reference);
        await index.fresh();
        const fp = errorFingerprint(entries[1]!.error);
        const since = entries[10]!.deadLetteredAt;
        const searches: DeadLetterSearch[] = [
          { text: 'ÉtaTs' },
          { text: 'grösse' },
          { text: 'GRÖSSE' },
          { text: 'σίσυφος' },
          { errorText: 'ΣΊΣΥΦΟΣ' },
          { errorText: 'größe des états' },
          { errorText: 'billing' },
          { text: 'billing' },
          { text: 'error: failure 1' },
          { text: '\nagg' },
          { text: '' },
          { errorText: '' },
          { aggregateId: 'agg-1' },
          { aggregateId: 'agg-1', group: 'group-b' },
          { aggregateId: 'AGG-1' },
          { aggregateId: 'elsewhere' },
          { aggregateId: entries[5]!.message.key! },
          { eventId: 'msg-7' },
          { eventId: 'moved', aggregateId: 'elsewhere' },
          { eventId: 'msg-7', aggregateId: 'agg-2' },
          { eventId: entries[6]!.message.id },
          { text: 'group-b', since, until: since + 20 },
          { text: fp },
          { errorText: 'failure', fingerprint: fp, reason: 'max-attempts' },
          { text: 'failure', topic: 'other.events' },
          { text: 'nothing matches this' },
          { aggregateId: 'agg-2', since, until: since + 30 },
        ];
        for (const search of searches) {
          const { text, ...rest } = search;
          const filter = { ...rest, ...(text !== undefined ? { q: text } : {}) };
          const label = JSON.stringify(search);
          for (const order of ['newest', 'oldest'] as const) {
            let cursor: string | undefined;
            for (let p = 0; p < 20; p++) {
              const got = await find(search, { limit: 7, order, ...(cursor ? { cursor } : {}) });
              const want = index.page(filter, {
                limit: 7,
                newestFirst: order === 'newest',
                ...(cursor ? { cursor } : {}),
              });
              assert.deepEqual(
                { ...got, items: got.items.map((i) => ({ ...i })) },
                { ...want, items: want.items.map(({ fingerprint: _, ...i }) => i) },
                `${label} ${order} page ${p}`,
              );
              cursor = got.nextCursor;
              if (!cursor) break;
            }
            assert.equal(cursor, undefined, `${label}: pages did not end`);
          }
          if (typeof store.searchKeys === 'function')
            assert.deepEqual(
              (await store.searchKeys(search)).map((k) => ({ ...k })),
              index.select(filter).map((l) => ({
                id: l.id,
                deadLetteredAt: l.deadLetteredAt,
                group: l.group,
                topic: l.topic,
                ...(l.eventType !== undefined ? { eventType: l.eventType } : {}),
                reason: l.reason,
                fingerprint: l.fingerprint,
              })),
              `${label} keys`,
            );
        }
        // Not vacuous: the non-ASCII, id and combined searches find something.
        assert.equal((await store.search({ text: 'ÉtaTs' })).total, 2);
        assert.equal((await store.search({ errorText: 'ΣΊΣΥΦΟΣ' })).total, 1);
        assert.equal((await store.search({ eventId: 'moved', aggregateId: 'elsewhere' })).total, 1);
        assert.ok((await store.search({ aggregateId: 'agg-1', group: 'group-b' })).total > 1);
        assert.equal((await store.search({ eventId: entries[6]!.message.id })).total, 0);
        await store.purge();
        assert.equal((await store.search({ text: '' })).total, 0);
        assert.equal((await store.search({ aggregateId: 'agg-1' })).total, 0);
      });
    }

    if (harness.idempotency) {
      const make = () => track(harness.idempotency!());

      test('idempotency: reserve, in-progress, complete, done', async () => {
        const store = await make();
        assert.equal(await store.reserve('k1', 10_000), 'acquired');
        assert.equal(await store.reserve('k1', 10_000), 'in-progress');
        await store.complete('k1', 10_000);
        assert.equal(await store.reserve('k1', 10_000), 'done');
        assert.equal(await store.reserve('k2', 10_000), 'acquired');
      });

      test('idempotency: release lets a retry reserve again; release of a done key keeps it done', async () => {
        const store = await make();
        await store.reserve('k', 10_000);
        await store.release('k');
        assert.equal(await store.reserve('k', 10_000), 'acquired');
        await store.complete('k', 10_000);
        await store.release('k');
        assert.equal(await store.reserve('k', 10_000), 'done');
      });

      test('idempotency: leases and completions expire after their TTL', async () => {
        const store = await make();
        assert.equal(await store.reserve('lease', 60), 'acquired');
        await store.complete('done', 60);
        await sleep(200);
        assert.equal(await store.reserve('lease', 10_000), 'acquired', 'an expired lease is free again');
        assert.equal(await store.reserve('done', 10_000), 'acquired', 'an expired completion is forgotten');
      });

      test('idempotency: 20 concurrent reservations of one key, exactly one wins', async () => {
        const store = await make();
        const results = await Promise.all(Array.from({ length: 20 }, () => store.reserve('race', 10_000)));
        assert.equal(results.filter((r) => r === 'acquired').length, 1);
        assert.equal(results.filter((r) => r === 'in-progress').length, 19);
      });
    }

    if (harness.events) {
      const make = () => track(harness.events!());

      test('events: append assigns positions and per-aggregate sequences; read returns envelopes intact', async () => {
        const store = await make();
        const a = [
          event(1),
          event(2),
          event(3, { aggregateId: 'order-2' }),
          event(4, { aggregateId: undefined }),
        ];
        delete (a[3] as { aggregateId?: string }).aggregateId;
        const stored = await store.append(a);
        assert.deepEqual(
          stored.map((s) => [s.position, s.sequence]),
          [
            [1, 1],
            [2, 2],
            [3, 1],
            [4, 0],
          ],
        );
        const agg = await store.readAggregate('order-1');
        assert.deepEqual(
          agg.map((s) => s.event),
          [a[0], a[1]],
        );
        assert.deepEqual(
          (await store.readAggregate('order-1', 2)).map((s) => s.sequence),
          [2],
        );
        assert.equal(await store.lastPosition(), 4);
      });

      test('events: appending an already stored id is skipped', async () => {
        const store = await make();
        const e = event(1);
        await store.append([e]);
        const again = await store.append([e, event(2)]);
        assert.equal(again.length, 1);
        assert.equal(await store.lastPosition(), 2);
      });

      test('events: query filters by type, tenant, aggregate and time range, with paging', async () => {
        const store = await make();
        const all: EventEnvelope[] = [];
        for (let i = 0; i < 30; i++) {
          all.push(
            event(i, {
              type: i % 2 === 0 ? 'shop.order.placed' : 'shop.order.paid',
              tenantId: i % 3 === 0 ? 't0' : 't1',
              aggregateId: `order-${i % 5}`,
            }),
          );
        }
        await store.append(all);
        const placed = await store.query({ types: ['shop.order.placed'] }, { limit: 100 });
        assert.equal(placed.items.length, 15);
        assert.equal((await store.query({ tenantId: 't0' })).items.length, 10);
        assert.equal((await store.query({ aggregateId: 'order-2' })).items.length, 6);
        const ranged = await store.query({
          from: new Date(Date.UTC(2026, 0, 1, 0, 0, 10)),
          to: '2026-01-01T00:00:20.000Z',
        });
        assert.deepEqual(
          ranged.items.map((s) => (s.event.payload as { n: number }).n),
          [10, 11, 12, 13, 14, 15, 16, 17, 18, 19],
        );
        const seen: number[] = [];
        let cursor: string | undefined;
        do {
          const page = await store.query({ types: ['shop.order.paid'] }, { limit: 4, cursor });
          seen.push(...page.items.map((s) => s.position));
          cursor = page.nextCursor;
        } while (cursor);
        assert.deepEqual(
          seen,
          Array.from({ length: 15 }, (_, i) => 2 * i + 2),
        );
      });

      test('events: stream replays everything after a position, in order', async () => {
        const store = await make();
        await store.append(
          Array.from({ length: 1200 }, (_, i) => event(i % 60, { aggregateId: `a${i % 7}` })),
        );
        const positions: number[] = [];
        for await (const s of store.stream(150, { batchSize: 100 })) positions.push(s.position);
        assert.equal(positions.length, 1050);
        assert.equal(positions[0], 151);
        assert.ok(positions.every((p, i) => i === 0 || p === positions[i - 1]! + 1));
      });

      test('events: expectedSequence guards concurrent writers of one aggregate', async () => {
        const store = await make();
        await store.append([event(1), event(2)], { expectedSequence: 0 });
        await assert.rejects(store.append([event(3)], { expectedSequence: 1 }), (err: unknown) => {
          assert.ok(err instanceof ConcurrencyError);
          assert.equal(err.actual, 2);
          return true;
        });
        await store.append([event(3)], { expectedSequence: 2 });
        assert.equal((await store.readAggregate('order-1')).length, 3);
      });

      test('events: concurrent appends to one aggregate get unique, gapless sequences', async () => {
        const store = await make();
        await Promise.all(
          Array.from({ length: 10 }, (_, w) =>
            store.append(Array.from({ length: 10 }, (_, i) => event(w * 10 + i))),
          ),
        );
        const stored = await store.readAggregate('order-1');
        assert.deepEqual(
          stored.map((s) => s.sequence),
          Array.from({ length: 100 }, (_, i) => i + 1),
        );
        assert.equal(new Set(stored.map((s) => s.position)).size, 100);
      });
    }
  });
}
