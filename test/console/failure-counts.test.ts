import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteDeadLetterStore } from '../../src/adapters/sqlite/index.js';
import { APPLICATION_ID, MIGRATIONS } from '../../src/adapters/sqlite/schema.js';
import { DeadLetterIndex, type ConsoleFilter } from '../../src/console/index.js';
import { groupsFromCounts } from '../../src/console/dead-letter-index.js';
import type { DeadLetterEntry } from '../../src/store/dead-letter-store.js';

/**
 * SQLite answers failure groups from its fingerprint column and covering index (ADR 0973): the
 * answer must equal the console index's, for every filter the store takes; rows written before
 * the column existed (a schema-2 file written with plain SQL) get their fingerprint on first use.
 */

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
      assert.equal(check.pragma('user_version', { simple: true }), 3);
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
