import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { sqlite } from '../../../src/adapters/sqlite/index.js';
import type { Delivery } from '../../../src/transport/transport.js';
import { holdWriteLock, msg, sleep, tempDir, unique, until } from './helpers.js';

// ADR 0207: the consumer path counts its transactions, lock misses, and where its leases came from,
// so a slow group (several processes meeting each other's keys and the write lock) can be diagnosed.

const tmp = tempDir('herald-sqlite-counters-');
after(() => tmp.cleanup());

describe('SqliteTransport counters', () => {
  test('count leases from the log and from held-back rows, settles and transactions', async () => {
    const t = sqlite({ path: tmp.file(`${unique('f')}.db`), pollIntervalMs: 20 });
    try {
      const topic = unique('t');
      // Two messages per key: the second of each key is held back until the first is acked.
      await t.publish(topic, [msg('a1', 'a'), msg('b1', 'b'), msg('a2', 'a'), msg('b2', 'b')]);
      const seen: string[] = [];
      await t.subscribe(topic, { group: 'g', prefetch: 8 }, async (d: Delivery) => {
        seen.push(d.message.id);
        await d.ack();
      });
      await until(() => seen.length === 4, 5000, 'four deliveries');
      await until(() => t.counters().settled === 4, 5000, 'four settles committed');
      const c = t.counters();
      assert.equal(c.leasedFromLog + c.leasedFromPending, 4);
      assert.equal(c.heldBack, c.leasedFromPending, 'each held-back row was leased later from pending');
      assert.ok(c.heldBack >= 2, `a2 and b2 wait behind a1 and b1 (heldBack ${c.heldBack})`);
      assert.equal(c.heldByOthers, 0, 'no other instance holds a key');
      assert.equal(c.scanned, 4);
      assert.ok(c.transactions >= 2 && c.transactions <= c.fetches, JSON.stringify(c));
      assert.equal(c.lockMisses, 0);
    } finally {
      await t.close();
    }
  });

  test('count the attempts that found the write lock held and the time spent retrying', async () => {
    const file = tmp.file(`${unique('f')}.db`);
    const t = sqlite({ path: file, busyTimeoutMs: 5000, pollIntervalMs: 20 });
    try {
      const topic = unique('t');
      const held: Delivery[] = [];
      await t.subscribe(topic, { group: 'g', prefetch: 4 }, (d) => void held.push(d));
      await t.publish(topic, [msg('a')]);
      await until(() => held.length === 1);
      const lock = holdWriteLock(file);
      const acked = held[0]!.ack();
      await sleep(150);
      lock.release();
      await acked;
      const c = t.counters();
      assert.ok(c.lockMisses > 0, 'the ack found the lock held');
      assert.ok(c.lockWaitMs >= 100, `it retried while the lock was held (${c.lockWaitMs} ms)`);
      assert.equal(c.settled, 1);
    } finally {
      await t.close();
    }
  });

  test('a copy is returned: callers cannot change the counts', async () => {
    const t = sqlite({ path: tmp.file(`${unique('f')}.db`) });
    try {
      const c = t.counters();
      c.transactions = 99;
      assert.equal(t.counters().transactions, 0);
    } finally {
      await t.close();
    }
  });
});
