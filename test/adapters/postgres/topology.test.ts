/**
 * topology() on PostgreSQL: every topic of the schema (published to, scheduled on, subscribed to,
 * or written with plain SQL) and its groups, in byte order, seen from another transport; and
 * `herald stats --transport postgres://…` listing the groups without --group.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { PostgresTransport } from '../../../src/adapters/postgres/index.js';
import { assertReachable } from '../../support/services.js';
import { unique } from '../../support/wait.js';
import { dropSchemas, SHARED_URL, uniqueSchema } from './harness.js';
import { herald } from '../../support/cli.js';

const body = new TextEncoder().encode('{}');
const schemas: string[] = [];
const schema = (what: string): string => {
  const s = uniqueSchema(what);
  schemas.push(s);
  return s;
};

before(() => assertReachable('postgres'));
after(() => dropSchemas(SHARED_URL, schemas));

test('another transport lists every topic of the schema and its groups, sorted in byte order', async () => {
  const s = schema('topo');
  const writer = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
  // Upper case sorts before lower case in byte order, unlike most database collations.
  const topic = 'b-orders';
  const groups = ['Shipping', 'billing', 'ä-audit'];
  for (const group of groups)
    await (await writer.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
  await writer.publish(topic, [{ id: '1', headers: {}, body }]);
  await writer.publish('a-later', [{ id: '2', headers: {}, body }], { deliverAt: Date.now() + 3_600_000 });
  await writer.publish('Z-published', [{ id: '3', headers: {}, body }]);
  // Written with plain SQL: a topic nobody publishes to or reads.
  const client = new pg.Client({ connectionString: SHARED_URL });
  await client.connect();
  await client.query(`INSERT INTO "${s}".topics (name) VALUES ('c-quiet')`);
  await client.end();
  const other = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: schema('other') });
  await (await other.subscribe(topic, { group: 'stranger', prefetch: 1 }, (d) => d.ack())).close();

  const reader = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
  assert.deepEqual(await reader.topology(), [
    { topic: 'Z-published', groups: [] },
    { topic: 'a-later', groups: [] },
    { topic, groups: ['Shipping', 'billing', 'ä-audit'] },
    { topic: 'c-quiet', groups: [] },
  ]);
  assert.equal(await writer.deleteGroup(topic, 'billing'), true);
  assert.deepEqual((await reader.topology()).find((x) => x.topic === topic)?.groups, ['Shipping', 'ä-audit']);
  await Promise.all([writer.close(), other.close(), reader.close()]);
  await assert.rejects(reader.topology(), { name: 'ClosedError' });
});

test('herald stats --transport postgres://… lists every group of the schema without --group', async () => {
  const s = schema('stats');
  const topic = unique('invoices');
  const groups = [unique('ga'), unique('gb')].sort();
  const t = await PostgresTransport.connect({ connectionString: SHARED_URL, schema: s });
  for (const group of groups)
    await (await t.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
  await t.publish(topic, [
    { id: 'a', headers: {}, body },
    { id: 'b', headers: {}, body },
  ]);
  await t.close();
  const run = await herald(['stats', '--transport', `${SHARED_URL}?namespace=${s}`, '--json']);
  assert.equal(run.code, 0, run.stderr);

  const out = JSON.parse(run.stdout) as {
    transport: string;
    groups: { topic: string; group: string; lag: number }[];
  };
  assert.equal(out.transport, 'postgres');
  assert.deepEqual(
    out.groups.map((r) => [r.topic, r.group, r.lag]),
    groups.map((g) => [topic, g, 2]),
    'both groups, each 2 behind (they never consumed)',
  );
});
