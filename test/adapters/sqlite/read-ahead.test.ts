import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { type SqliteTransport, sqlite } from '../../../src/adapters/sqlite/index.js';
import { BUSY, acquireDatabase } from '../../../src/adapters/sqlite/database.js';
import { resolveTransportOptions } from '../../../src/adapters/sqlite/options.js';
import { BrokerQueries, type FetchResult } from '../../../src/adapters/sqlite/queue.js';
import type { Delivery } from '../../../src/transport/transport.js';
import { msg, tempDir, unique, until } from './helpers.js';

// ADR 0206: a subscription whose handlers keep up leases beyond its free handler slots into a
// local buffer. Buffered deliveries are leases like handed-out ones; handlers never hold more than
// `prefetch`; closing the subscription returns the buffer uncounted.

const tmp = tempDir('herald-sqlite-read-ahead-');
const open: SqliteTransport[] = [];
after(async () => {
  for (const t of open) await t.close();
  tmp.cleanup();
});

/**
 * Acks the first `quick` deliveries at once and holds the rest; returns the held ones and the most
 * deliveries its handler held unsettled at once.
 */
async function consumeThenHold(
  bufferSize: number,
  quick: number,
): Promise<{
  file: string;
  topic: string;
  held: Delivery[];
  maxHeld: () => number;
  close: () => Promise<void>;
  stats: () => Promise<{ inFlight: number; lag: number }>;
}> {
  const file = tmp.file(`${unique('f')}.db`);
  const t = sqlite({ path: file, pollIntervalMs: 20, bufferSize });
  open.push(t);
  const topic = unique('t');
  await t.publish(
    topic,
    Array.from({ length: 200 }, (_, i) => msg(`m${i}`, `k${i}`)),
  );
  const held: Delivery[] = [];
  let acked = 0;
  let unsettled = 0;
  let most = 0;
  const acks: Promise<void>[] = [];
  const sub = await t.subscribe(topic, { group: 'g', prefetch: 4 }, async (d) => {
    most = Math.max(most, ++unsettled);
    if (acked < quick) {
      acked++;
      unsettled--;
      const ack = d.ack();
      acks.push(ack);
      await ack;
    } else {
      held.push(d);
    }
  });
  await until(() => held.length === 4, 5000, 'four held deliveries');
  await Promise.all(acks); // committed, so stats() no longer counts them in flight
  return {
    file,
    topic,
    held,
    maxHeld: () => most,
    close: async () => {
      await sub.close();
    },
    stats: async () => t.stats(topic, 'g'),
  };
}

describe('SqliteTransport read-ahead', () => {
  test('handlers that keep up make fetches lease ahead; the handler never holds more than prefetch', async () => {
    const c = await consumeThenHold(64, 60);
    assert.equal(c.maxHeld(), 4);
    const stats = await c.stats();
    assert.ok(stats.inFlight > 4, `buffered deliveries are leased (in flight ${stats.inFlight})`);
    assert.ok(stats.inFlight <= 4 + 64, `bounded by prefetch + bufferSize (in flight ${stats.inFlight})`);
    assert.equal(stats.inFlight + stats.lag, 200 - 60);
    await c.close();
  });

  test('closing the subscription returns the buffer uncounted; handed-out deliveries stay leased', async () => {
    const c = await consumeThenHold(64, 60);
    await c.close();
    const stats = await c.stats();
    assert.equal(stats.inFlight, 4, 'only the four the handler holds');
    const t = sqlite({ path: c.file, pollIntervalMs: 20, bufferSize: 0 });
    open.push(t);
    const again: Delivery[] = [];
    await t.subscribe(c.topic, { group: 'g', prefetch: 200 }, (d) => void again.push(d));
    await until(() => again.length === 200 - 60 - 4, 5000, 'the rest');
    assert.deepEqual(
      again.filter((d) => d.attempt !== 1).map((d) => d.message.id),
      [],
      'released buffer entries were never attempted',
    );
  });

  test('bufferSize 0 leases no more than the free handler slots', async () => {
    const c = await consumeThenHold(0, 60);
    const stats = await c.stats();
    assert.equal(stats.inFlight, 4);
    assert.equal(stats.lag, 200 - 60 - 4);
    await c.close();
  });
});

describe('SqliteTransport read-ahead with another process in the group', () => {
  // A fetch tells rows held back behind another instance's lease from rows held back behind its
  // own: the transport drops its read-ahead on the first (ADR 0206), so two processes do not pile
  // up each other's keys. Checked on the SQL the transport runs, with two lease-token prefixes
  // standing for two processes.
  test('a fetch counts the rows it held back behind keys leased to another instance', () => {
    const handle = acquireDatabase(resolveTransportOptions({ path: tmp.file(`${unique('f')}.db`) }));
    try {
      const q = new BrokerQueries(handle.database);
      const topic = unique('t');
      const now = Date.now();
      q.publish(topic, [msg('m0', 'a'), msg('m1', 'b'), msg('m2', 'a'), msg('m3', 'b'), msg('m4', 'c')], now);
      const topicId = q.topicId(topic);
      const groupId = q.groupId(topic, 'g', 'earliest', now);
      const fetch = (holder: string, n: number, limit: number): FetchResult => {
        const r = q.fetch(
          { topicId, groupId, limit, byKey: true, token: `${holder}${n}`, holder, leaseUntil: now + 30_000 },
          now,
          false,
          true,
        );
        assert.notEqual(r, BUSY);
        return r as FetchResult;
      };
      const a1 = fetch('A.', 1, 2);
      assert.deepEqual(
        a1.leased.map((l) => l.message.id),
        ['m0', 'm1'],
      );
      assert.equal(a1.heldByOthers, 0);

      const b1 = fetch('B.', 1, 3);
      assert.deepEqual(
        b1.leased.map((l) => l.message.id),
        ['m4'],
      );
      assert.equal(b1.heldBack, 2, 'm2 and m3 wait for m0 and m1');
      assert.equal(b1.heldByOthers, 2, 'both keys are leased to A');

      q.publish(topic, [msg('m5', 'c'), msg('m6', 'a')], now);
      const a2 = fetch('A.', 2, 2);
      assert.deepEqual(a2.leased, []);
      assert.equal(a2.heldBack, 2);
      assert.equal(a2.heldByOthers, 1, 'c is leased to B; a is A’s own');
    } finally {
      handle.release();
    }
  });
});
