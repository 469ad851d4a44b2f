/**
 * `herald saga` through the real binary against a PostgreSQL schema holding sagas in several
 * states (written by a runner on PostgresSagaStore), checked with plain SQL as well as through the
 * CLI's own output. The SQLite twin is test/saga/cli.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PostgresSagaStore } from '../../../src/adapters/postgres/index.js';
import { defineSaga, SagaRunner, type SagaRecord } from '../../../src/saga/index.js';
import { assertReachable } from '../../support/services.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from './harness.js';
import { herald } from '../../support/cli.js';

const schema = uniqueSchema('sagacli');
const url = `${SHARED_URL}?namespace=${schema}`;
const pool = new pg.Pool({ connectionString: SHARED_URL, max: 1 });
after(async () => {
  await pool.end();
  await dropSchemas(SHARED_URL, [schema]);
});

let undoFails = true;
const saga = defineSaga<{ fail: boolean }>('order')
  .step('reserve', {
    run: () => 'r',
    compensate: () => {
      if (undoFails) throw new Error('stock service down');
    },
    compensationRetry: false,
  })
  .step('charge', {
    run: (ctx) => {
      if (ctx.input.fail) throw new Error('card declined');
      return 'c';
    },
  });

const open = (): Promise<PostgresSagaStore> =>
  PostgresSagaStore.connect({ connectionString: SHARED_URL, schema, poolSize: 2 });

before(async () => {
  await assertReachable('postgres');
  const store = await open();
  const runner = new SagaRunner({ store, sagas: [saga], pollIntervalMs: 10 });
  runner.start();
  await runner.wait(await runner.begin(saga, { fail: false }, { id: 'order-ok' }));
  await runner.wait(await runner.begin(saga, { fail: true }, { id: 'order-parked' }));
  await runner.wait(await runner.begin(saga, { fail: true }, { id: 'order-parked-2' }));
  await runner.stop();
  await store.close();
});

test('list shows every saga; --status filters; --json is machine-readable', async () => {
  const all = await herald(['saga', 'list', '--transport', url, '--json']);
  assert.equal(all.code, 0, all.stderr);
  const items = (JSON.parse(all.stdout) as { items: SagaRecord[] }).items;
  assert.deepEqual(items.map((r) => r.id).sort(), ['order-ok', 'order-parked', 'order-parked-2']);
  const parked = await herald(['saga', 'list', '--transport', url, '--status', 'compensation-failed']);
  assert.equal(parked.code, 0, parked.stderr);
  assert.match(parked.stdout, /order-parked/);
  assert.doesNotMatch(parked.stdout, /order-ok/);
  assert.match(parked.stdout, /stock service down/);
  const shown = await herald(['saga', 'show', 'order-parked', '--transport', url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /status\s+compensation-failed/);
});

test('retry and abort change the stored rows; a runner then finishes the retried saga', async () => {
  const retried = await herald(['saga', 'retry', 'order-parked', '--transport', url]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.equal(retried.stdout.trim(), 'order-parked: compensating');
  const aborted = await herald([
    'saga',
    'abort',
    'order-parked-2',
    '--transport',
    url,
    '--reason',
    'by hand',
  ]);
  assert.equal(aborted.code, 0, aborted.stderr);
  const { rows } = await pool.query<{ id: string; status: string; wake_at: string | null }>(
    `SELECT id, status, wake_at FROM "${schema}".sagas ORDER BY id`,
  );
  assert.deepEqual(
    rows.map((r) => [r.id, r.status, r.wake_at === null ? 'dormant' : 'due']),
    [
      ['order-ok', 'completed', 'dormant'],
      ['order-parked', 'compensating', 'due'],
      ['order-parked-2', 'aborted', 'dormant'],
    ],
  );
  undoFails = false;
  const store = await open();
  const runner = new SagaRunner({ store, sagas: [saga], pollIntervalMs: 10 });
  runner.start();
  assert.equal((await runner.wait('order-parked')).status, 'compensated');
  await runner.stop();
  await store.close();
});

test('a schema that does not exist is refused, not created', async () => {
  const absent = uniqueSchema('absent');
  const listed = await herald(['saga', 'list', '--transport', `${SHARED_URL}?namespace=${absent}`]);
  assert.notEqual(listed.code, 0);
  assert.match(listed.stderr, /no Herald schema/);
  const { rows } = await pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [absent]);
  assert.equal(rows.length, 0);
});
