/**
 * EXPLAIN ANALYZE of the PostgreSQL dead-letter queries on a million entries (docs/adapters/postgres.md).
 *   node --import tsx bench/postgres-dlq-explain.ts   (writes to a schema of its own, dropped after)
 */
import pg from 'pg';
import { postgresStores } from '../src/adapters/postgres/index.js';
const url = 'postgres://postgres@127.0.0.1:5432/test';
const schema = 'dlq_explain_' + process.pid;
const stores = await postgresStores({ connectionString: url, schema });
const c = new pg.Client(url);
await c.connect();
const t0 = Date.now();
await c.query(`INSERT INTO "${schema}".dead_letters (id, reason, topic, grp, handler, event_type, aggregate_id, error, dead_lettered_at, entry, body)
  SELECT 'g' || (i % 20) || ':' || i, 'max-attempts', 'topic-' || (i % 10), 'group-' || (i % 20), 'h', 'type.' || (i % 50), 'agg-' || (i % 100000),
         'Error: ' || (ARRAY['timeout talking to payments','connection refused','card declined','validation failed'])[1 + i % 4] || ' ' || i,
         1700000000000 + i * 1000, '{}'::jsonb, '\\x00' FROM generate_series(1, 1000000) i`);
await c.query(`ANALYZE "${schema}".dead_letters`);
console.log(`-- 1,000,000 rows inserted in ${Date.now() - t0} ms`);
const s = `"${schema}"`;
const queries = [
  `SELECT entry, body FROM ${s}.dead_letters WHERE grp = 'group-7' ORDER BY dead_lettered_at, id LIMIT 101`,
  `SELECT entry, body FROM ${s}.dead_letters WHERE event_type = 'type.42' AND dead_lettered_at >= 1700500000000 ORDER BY dead_lettered_at, id LIMIT 101`,
  `SELECT entry, body FROM ${s}.dead_letters WHERE aggregate_id = 'agg-4242' ORDER BY dead_lettered_at, id LIMIT 101`,
  `SELECT entry, body FROM ${s}.dead_letters WHERE to_tsvector('simple', error) @@ plainto_tsquery('simple', 'card declined 999') ORDER BY dead_lettered_at, id LIMIT 101`,
  `SELECT entry, body FROM ${s}.dead_letters WHERE dead_lettered_at >= 1700900000000 AND dead_lettered_at < 1700900600000 ORDER BY dead_lettered_at, id LIMIT 101`,
  `SELECT count(*) FROM ${s}.dead_letters WHERE grp = 'group-7'`,
];
for (const q of queries) {
  const { rows } = await c.query(`EXPLAIN (ANALYZE, COSTS OFF) ${q}`);
  console.log('\n' + q.replace(s, 'herald') + '\n' + rows.map((r) => r['QUERY PLAN']).join('\n'));
}
await c.query(`DROP SCHEMA ${s} CASCADE`);
await c.end();
await stores.close();
