/**
 * `herald saga` through the real binary against a SQLite file holding sagas in several states,
 * checked with plain SQL as well as through the CLI's own output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteSagaStore } from '../../src/adapters/sqlite/index.js';
import { defineSaga, SagaRunner, type SagaRecord } from '../../src/saga/index.js';
import { herald } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-saga-cli-'));
const file = join(dir, 'events.db');
const url = `sqlite://${file}`;
after(() => rmSync(dir, { recursive: true, force: true }));

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

before(async () => {
  const store = new SqliteSagaStore({ path: file });
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
});

test('show prints the steps and the timeline', async () => {
  const shown = await herald(['saga', 'show', 'order-parked', '--transport', url]);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /status\s+compensation-failed/);
  assert.match(shown.stdout, /charge\s+failed/);
  assert.match(shown.stdout, /compensation\.failed reserve\s+stock service down/);
});

test('retry and abort change the stored saga; wrong states and ids fail with a clear message', async () => {
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
    'refunded by hand',
  ]);
  assert.equal(aborted.code, 0, aborted.stderr);
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT id, status, wake_at FROM herald_sagas ORDER BY id').all() as {
    id: string;
    status: string;
    wake_at: number | null;
  }[];
  db.close();
  assert.deepEqual(
    rows.map((r) => [r.id, r.status, r.wake_at === null ? 'dormant' : 'due']),
    [
      ['order-ok', 'completed', 'dormant'],
      ['order-parked', 'compensating', 'due'],
      ['order-parked-2', 'aborted', 'dormant'],
    ],
  );

  // A runner picks the retried saga up; the compensation works now.
  undoFails = false;
  const store = new SqliteSagaStore({ path: file });
  const runner = new SagaRunner({ store, sagas: [saga], pollIntervalMs: 10 });
  runner.start();
  assert.equal((await runner.wait('order-parked')).status, 'compensated');
  await runner.stop();
  await store.close();

  const again = await herald(['saga', 'retry', 'order-ok', '--transport', url]);
  assert.equal(again.code, 1);
  assert.match(
    again.stderr,
    /order-ok is completed: only failed and compensation-failed sagas can be retried \[HERALD_SAGA_STATE\]/,
  );
  const missing = await herald(['saga', 'show', 'nope', '--transport', url]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no saga with id "nope"/);
  const bad = await herald(['saga', 'list', '--transport', url, '--status', 'done']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--status must be one of running, compensating/);
  const noSub = await herald(['saga', '--transport', url]);
  assert.equal(noSub.code, 2);
});
