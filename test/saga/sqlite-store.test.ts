import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteSagaStore, type SqliteSagaTx } from '../../src/adapters/sqlite/index.js';
import { runSagaStoreSuite } from '../../src/saga/testing.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-saga-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'sagas.db');

// Effects write to an application table in the same file, inside the store's transaction; the test
// reads it back through a plain connection of its own.
const setup = new SqliteSagaStore({ path: file });
await setup.close();
const db = new Database(file);
db.exec('CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, n INTEGER NOT NULL)');
after(() => db.close());

runSagaStoreSuite<SqliteSagaTx>('sqlite', () => new SqliteSagaStore({ path: file }), {
  effects: {
    increment: (key) => (tx) =>
      void tx
        .prepare('INSERT INTO counters (key, n) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET n = n + 1')
        .run(key),
    failing: () => (tx) => void tx.prepare('INSERT INTO no_such_table VALUES (1)').run(),
    read: async (key) =>
      (db.prepare('SELECT n FROM counters WHERE key = ?').get(key) as { n: number } | undefined)?.n ?? 0,
  },
});
