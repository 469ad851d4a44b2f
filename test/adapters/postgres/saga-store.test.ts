/**
 * The saga store conformance suite on the shared PostgreSQL server, in a schema of its own
 * (dropped after). Effects write to an application table in the same schema, inside the store's
 * transaction; the test reads it back, and checks the lease columns, with plain SQL.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { PostgresSagaStore, type PostgresSagaTx } from '../../../src/adapters/postgres/index.js';
import { SagaLeaseLostError } from '../../../src/saga/errors.js';
import { runSagaStoreSuite, sampleRecord } from '../../../src/saga/testing.js';
import { needs } from '../../support/services.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from './harness.js';

const skip = await needs('postgres');
const schema = uniqueSchema('saga');
const pool = new pg.Pool({ connectionString: SHARED_URL, max: 2 });
after(async () => {
  await pool.end();
  await dropSchemas(SHARED_URL, [schema]);
});
const open = (): Promise<PostgresSagaStore> =>
  PostgresSagaStore.connect({ connectionString: SHARED_URL, schema, poolSize: 4 });

if (!skip.skip) {
  const setup = await open();
  await setup.close();
  await pool.query(`CREATE TABLE "${schema}".counters (key text PRIMARY KEY, n int NOT NULL)`);
}

runSagaStoreSuite<PostgresSagaTx>('postgres', open, {
  ...skip,
  effects: {
    increment: (key) => (tx) =>
      tx.query(
        `INSERT INTO "${schema}".counters (key, n) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET n = counters.n + 1`,
        [key],
      ),
    // A statement PostgreSQL refuses: the whole commit, state included, must roll back.
    failing: () => (tx) => tx.query(`INSERT INTO "${schema}".no_such_table VALUES (1)`),
    read: async (key) =>
      (await pool.query<{ n: number }>(`SELECT n FROM "${schema}".counters WHERE key = $1`, [key])).rows[0]
        ?.n ?? 0,
  },
});

test(
  'rows written with plain SQL: an expired lease is taken over, a live one is not; a \\u0000 input survives',
  skip,
  async () => {
    const store = await open();
    try {
      const r = sampleRecord({ type: 'raw', input: { text: 'nul \u0000 inside' } });
      await store.create(r);
      // Another process's lease, written behind the store's back: live, then expired.
      await pool.query(`UPDATE "${schema}".sagas SET lease_owner = 'other', lease_until = $2 WHERE id = $1`, [
        r.id,
        Date.now() + 60_000,
      ]);
      assert.equal(await store.acquire(r.id, 'A', 10_000), undefined);
      assert.deepEqual(await store.claimDue('A', 10_000, 10, ['raw']), []);
      await pool.query(`UPDATE "${schema}".sagas SET lease_until = $2 WHERE id = $1`, [r.id, Date.now() - 1]);
      const claimed = await store.claimDue('A', 10_000, 10, ['raw']);
      assert.deepEqual(
        claimed.map((c) => c.id),
        [r.id],
      );
      assert.deepEqual(claimed[0]!.input, { text: 'nul \u0000 inside' });
      const { rows } = await pool.query<{ lease_owner: string; version: number }>(
        `SELECT lease_owner, version FROM "${schema}".sagas WHERE id = $1`,
        [r.id],
      );
      assert.deepEqual(rows, [{ lease_owner: 'A', version: 0 }]);
      // A version bumped by someone else fences the owner out, effects included.
      await pool.query(`UPDATE "${schema}".sagas SET version = 7 WHERE id = $1`, [r.id]);
      await assert.rejects(
        store.commit(claimed[0]!, 'A', {
          leaseMs: 1000,
          effects: [(tx) => tx.query(`INSERT INTO "${schema}".counters VALUES ('fenced', 1)`)],
        }),
        SagaLeaseLostError,
      );
      const fenced = await pool.query(`SELECT 1 FROM "${schema}".counters WHERE key = 'fenced'`);
      assert.equal(fenced.rowCount, 0);
    } finally {
      await store.close();
    }
  },
);

test('a cursor that list did not return is refused naming the field', skip, async () => {
  const store = await open();
  try {
    await assert.rejects(store.list({}, { cursor: 'not-a-cursor' }), /cursor/);
    await assert.rejects(store.list({}, { limit: 0 }), /limit/);
  } finally {
    await store.close();
  }
});
