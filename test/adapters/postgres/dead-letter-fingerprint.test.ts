/**
 * Schema version 4 adds the failure fingerprint to PostgreSQL dead letters (ADR 0975). Rows written
 * before it have none; the store fills them in on its first query by fingerprint, so a filter by
 * failure group sees old and new rows alike.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { postgresStores, type PostgresStores } from '../../../src/adapters/postgres/index.js';
import { errorFingerprint } from '../../../src/store/dead-letter-fingerprint.js';
import type { DeadLetterEntry } from '../../../src/store/dead-letter-store.js';
import { needs } from '../../support/services.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from './harness.js';

const reachable = await needs('postgres');
const schemas: string[] = [];
const opened: PostgresStores[] = [];
after(async () => {
  for (const s of opened) await s.close();
  await dropSchemas(SHARED_URL, schemas);
});

function entry(i: number): DeadLetterEntry {
  return {
    id: `g:${i}`,
    reason: 'max-attempts',
    message: { id: `m-${i}`, headers: {}, body: new Uint8Array([i % 256]) },
    topic: 't',
    group: 'g',
    handler: 'h',
    error:
      i % 2
        ? { name: 'Error', message: `Order o-${i} not found`, stack: 'Error: x\n    at find (/a.ts:3:1)' }
        : { name: 'TypeError', message: 'x is undefined' },
    attempts: 1,
    firstFailedAt: i,
    lastFailedAt: i,
    deadLetteredAt: 1_000 + i,
  };
}

test(
  'rows from before the fingerprint column are filled in on the first query by fingerprint',
  reachable,
  async () => {
    const schema = uniqueSchema('dlqfp');
    schemas.push(schema);
    const first = await postgresStores({ connectionString: SHARED_URL, schema, poolSize: 2 });
    opened.push(first);
    for (let i = 0; i < 2_500; i++) await first.deadLetters.add(entry(i));
    // What a Herald before schema version 4 left behind: no fingerprint.
    const pool = new pg.Pool({ connectionString: SHARED_URL, max: 1 });
    try {
      await pool.query(`UPDATE "${schema}".dead_letters SET fingerprint = NULL WHERE id <> 'g:7'`);
    } finally {
      await pool.end();
    }
    const stores = await postgresStores({ connectionString: SHARED_URL, schema, poolSize: 2 });
    opened.push(stores);
    const fp = errorFingerprint(entry(1).error);
    assert.equal(await stores.deadLetters.count({ fingerprint: fp }), 1_250);
    const page = await stores.deadLetters.list({ fingerprint: fp }, { limit: 3, order: 'newest' });
    assert.deepEqual(
      page.items.map((e) => e.id),
      ['g:2499', 'g:2497', 'g:2495'],
    );
    assert.equal(await stores.deadLetters.purge({ fingerprint: errorFingerprint(entry(0).error) }), 1_250);
    assert.equal(await stores.deadLetters.count(), 1_250);
  },
);
