/**
 * `herald/saga/testing`: the conformance cases every SagaStore must pass. A new store proves itself
 * with one call:
 *
 * @example
 * import { runSagaStoreSuite } from 'herald/saga/testing';
 * runSagaStoreSuite('postgres', async () => new PostgresSagaStore({ ... }), { effects: { ... } });
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { SagaLeaseLostError } from './errors.js';
import type { SagaRecord, SagaStatus } from './record.js';
import type { SagaEffect, SagaStore } from './store.js';

/** Store-specific effects, to check that effects commit with the step (and only then). */
export interface EffectProbe<Tx = unknown> {
  /** An effect that increments the counter `key` in the store's own database. */
  increment(key: string): SagaEffect<Tx>;
  /** An effect that throws inside the transaction. */
  failing(): SagaEffect<Tx>;
  /** Current value of the counter `key` (0 when never written). */
  read(key: string): Promise<number>;
}

export interface SagaStoreSuiteOptions<Tx = unknown> {
  /** Without it the effect cases are skipped (as for a store that has no transactions to offer). */
  readonly effects?: EffectProbe<Tx>;
  /** `{ skip: reason }` when the store's database is unreachable. */
  readonly skip?: string;
}

/** A fresh record in status `running`, due now unless `wakeAt` says otherwise. */
export function sampleRecord(overrides: Partial<SagaRecord> = {}): SagaRecord {
  const now = Date.now();
  return {
    id: `s-${randomBytes(6).toString('hex')}`,
    type: 'suite',
    status: 'running',
    input: { n: 1, nested: { text: 'ünïcode ✓' } },
    cursor: 0,
    steps: [
      { name: 'a', status: 'pending', attempts: 0, compensations: 0 },
      { name: 'b', status: 'pending', attempts: 0, compensations: 0 },
    ],
    pivotPassed: false,
    wakeAt: now,
    version: 0,
    createdAt: now,
    updatedAt: now,
    metadata: {},
    timeline: [{ at: now, event: 'saga.started' }],
    ...overrides,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Registers the conformance tests for a store. `factory` is called once per test; each test uses
 * its own saga type, so stores may share one database.
 */
export function runSagaStoreSuite<Tx>(
  name: string,
  factory: () => SagaStore<Tx> | Promise<SagaStore<Tx>>,
  options: SagaStoreSuiteOptions<Tx> = {},
): void {
  describe(`saga store conformance: ${name}`, options.skip ? { skip: options.skip } : {}, () => {
    const opened: SagaStore<Tx>[] = [];
    const open = async (): Promise<SagaStore<Tx>> => {
      const store = await factory();
      opened.push(store);
      return store;
    };
    after(async () => {
      await Promise.all(opened.map((s) => s.close()));
    });
    const type = (): string => `t${randomBytes(5).toString('hex')}`;

    test('create stores a record; a second create with the id is refused', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      assert.equal(await store.create(r), true);
      assert.equal(await store.create({ ...r, input: 'other' }), false);
      const got = await store.get(r.id);
      assert.ok(got);
      assert.deepEqual({ ...got, lease: undefined }, { ...r, lease: undefined, version: 0 });
      assert.equal(got.lease, undefined);
      assert.equal(await store.get('no-such-saga'), undefined);
    });

    test('one owner at a time holds the lease; the holder may re-acquire', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      await store.create(r);
      const a = await store.acquire(r.id, 'A', 10_000);
      assert.equal(a?.lease?.owner, 'A');
      assert.ok(a.lease.until > Date.now());
      assert.equal(await store.acquire(r.id, 'B', 10_000), undefined);
      assert.equal((await store.acquire(r.id, 'A', 10_000))?.lease?.owner, 'A');
      assert.equal((await store.get(r.id))?.lease?.owner, 'A');
      assert.equal(await store.acquire('no-such-saga', 'A', 1000), undefined);
    });

    test('concurrent acquires: exactly one wins', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      await store.create(r);
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => store.acquire(r.id, `owner-${i}`, 10_000)),
      );
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('an expired lease can be taken by another owner, whose commits then fence out the old one', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      await store.create(r);
      const a = (await store.acquire(r.id, 'A', 60))!;
      await sleep(120);
      const b = await store.acquire(r.id, 'B', 10_000);
      assert.equal(b?.lease?.owner, 'B');
      a.cursor = 1;
      await assert.rejects(store.commit(a, 'A', { leaseMs: 1000 }), SagaLeaseLostError);
      b!.cursor = 2;
      await store.commit(b!, 'B', { leaseMs: 1000 });
      const got = await store.get(r.id);
      assert.equal(got?.cursor, 2);
      assert.equal(got?.version, 1);
    });

    test('commit bumps the version; a stale version or a non-owner writes nothing', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      await store.create(r);
      const a = (await store.acquire(r.id, 'A', 10_000))!;
      const stale = structuredClone(a);
      a.status = 'compensating';
      a.steps[0]!.status = 'done';
      a.steps[0]!.result = { id: 'r-1', list: [1, 2] };
      await store.commit(a, 'A', { leaseMs: 10_000 });
      assert.equal(a.version, 1);
      const got = (await store.get(r.id))!;
      assert.equal(got.version, 1);
      assert.equal(got.status, 'compensating');
      assert.deepEqual(got.steps[0]!.result, { id: 'r-1', list: [1, 2] });
      stale.cursor = 9;
      await assert.rejects(store.commit(stale, 'A', { leaseMs: 10_000 }), SagaLeaseLostError);
      const other = structuredClone(a);
      await assert.rejects(store.commit(other, 'B', { leaseMs: 10_000 }), SagaLeaseLostError);
      assert.equal((await store.get(r.id))!.version, 1);
    });

    test('commit with leaseMs 0 releases the lease; renew and release belong to the owner', async () => {
      const store = await open();
      const r = sampleRecord({ type: type() });
      await store.create(r);
      const a = (await store.acquire(r.id, 'A', 10_000))!;
      assert.equal(await store.renew(r.id, 'B', 10_000), false);
      assert.equal(await store.renew(r.id, 'A', 20_000), true);
      await store.release(r.id, 'B');
      assert.equal(await store.acquire(r.id, 'B', 10_000), undefined, 'release by a non-owner is a no-op');
      await store.commit(a, 'A', { leaseMs: 0 });
      assert.equal((await store.get(r.id))!.lease, undefined);
      assert.equal(await store.renew(r.id, 'A', 1000), false);
      const b = await store.acquire(r.id, 'B', 10_000);
      assert.equal(b?.lease?.owner, 'B');
      await store.release(r.id, 'B');
      assert.equal((await store.acquire(r.id, 'C', 10_000))?.lease?.owner, 'C');
    });

    test('claimDue leases due, unleased sagas of the given types, earliest first, up to the limit', async () => {
      const store = await open();
      const t = type();
      const now = Date.now();
      const due = [3, 1, 2].map((k) => sampleRecord({ type: t, wakeAt: now - k * 1000 }));
      const future = sampleRecord({ type: t, wakeAt: now + 60_000 });
      const dormant = sampleRecord({ type: t, wakeAt: null });
      const leased = sampleRecord({ type: t, wakeAt: now - 5000 });
      const otherType = sampleRecord({ type: type(), wakeAt: now - 9000 });
      for (const r of [...due, future, dormant, leased, otherType]) await store.create(r);
      await store.acquire(leased.id, 'X', 10_000);
      const first = await store.claimDue('A', 10_000, 2, [t]);
      assert.deepEqual(
        first.map((r) => r.id),
        [due[0]!.id, due[2]!.id],
      );
      assert.ok(first.every((r) => r.lease?.owner === 'A'));
      const second = await store.claimDue('B', 10_000, 10, [t]);
      assert.deepEqual(
        second.map((r) => r.id),
        [due[1]!.id],
      );
      assert.deepEqual(await store.claimDue('C', 10_000, 10, [t]), []);
      assert.deepEqual(await store.claimDue('A', 10_000, 10, [t]), [], 'not even its own leased sagas');
      assert.deepEqual(await store.claimDue('C', 10_000, 10, ['none-such']), []);
    });

    test('concurrent claimDue never hands one saga to two owners', async () => {
      const store = await open();
      const t = type();
      for (let i = 0; i < 30; i++) await store.create(sampleRecord({ type: t, wakeAt: Date.now() - i }));
      const claims = await Promise.all(
        Array.from({ length: 6 }, (_, i) => store.claimDue(`o${i}`, 10_000, 10, [t])),
      );
      const ids = claims.flat().map((r) => r.id);
      assert.equal(ids.length, 30);
      assert.equal(new Set(ids).size, 30);
    });

    test('list filters by type and status, newest first, and pages through everything once', async () => {
      const store = await open();
      const t = type();
      const statuses: SagaStatus[] = ['running', 'completed', 'compensated'];
      const created: SagaRecord[] = [];
      for (let i = 0; i < 25; i++) {
        const r = sampleRecord({ type: t, status: statuses[i % 3]!, createdAt: 1_700_000_000_000 + i });
        await store.create(r);
        created.push(r);
      }
      await store.create(sampleRecord({ type: type() }));
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list({ type: t }, { limit: 7, ...(cursor ? { cursor } : {}) });
        assert.ok(page.items.length <= 7);
        seen.push(...page.items.map((r) => r.id));
        cursor = page.nextCursor;
      } while (cursor);
      assert.deepEqual(seen, created.map((r) => r.id).reverse());
      const done = await store.list({ type: t, status: 'completed' }, { limit: 100 });
      assert.equal(done.items.length, 8);
      assert.ok(done.items.every((r) => r.status === 'completed'));
      assert.equal(done.nextCursor, undefined);
    });

    test(
      'effects commit with the record, and not at all when the commit is fenced out or an effect throws',
      options.effects ? {} : { skip: 'this store offers no transactional effects' },
      async () => {
        const probe = options.effects!;
        const store = await open();
        const r = sampleRecord({ type: type() });
        const key = `k-${r.id}`;
        await store.create(r);
        const a = (await store.acquire(r.id, 'A', 10_000))!;
        a.cursor = 1;
        await store.commit(a, 'A', {
          leaseMs: 10_000,
          effects: [probe.increment(key), probe.increment(key)],
        });
        assert.equal(await probe.read(key), 2);
        const stale = structuredClone(a);
        stale.version = 0;
        await assert.rejects(
          store.commit(stale, 'A', { leaseMs: 10_000, effects: [probe.increment(key)] }),
          SagaLeaseLostError,
        );
        assert.equal(await probe.read(key), 2, 'a fenced-out commit applies no effect');
        a.cursor = 2;
        await assert.rejects(
          store.commit(a, 'A', { leaseMs: 10_000, effects: [probe.increment(key), probe.failing()] }),
        );
        assert.equal(await probe.read(key), 2, 'an effect that throws rolls back the whole commit');
        const got = (await store.get(r.id))!;
        assert.equal(got.cursor, 1);
        assert.equal(got.version, 1);
      },
    );
  });
}
