import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { SqliteBusyError, sqlite } from '../../../src/adapters/sqlite/index.js';
import type { Delivery } from '../../../src/transport/transport.js';
import { holdWriteLock, msg, sleep, tempDir, unique, until } from './helpers.js';

// ADR 0205: a settle (and the fetch that shares its transaction) that finds another connection
// holding the write lock retries on timers, so the process's event loop keeps running; only after
// busyTimeoutMs of that does it wait in SQLite's busy handler and fail with SqliteBusyError.

const tmp = tempDir('herald-sqlite-lock-wait-');
after(() => tmp.cleanup());

/** Largest gap between ticks of a 5 ms interval, until `stop()`. */
function eventLoopGaps(): { stop: () => number } {
  let last = performance.now();
  let max = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last);
    last = now;
  }, 5);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(max, performance.now() - last);
    },
  };
}

describe('SqliteTransport under another connection’s write lock', () => {
  test('an ack waits for the lock with the event loop free, and lands once the lock is released', async () => {
    const file = tmp.file(`${unique('f')}.db`);
    const t = sqlite({ path: file, busyTimeoutMs: 3000, pollIntervalMs: 20 });
    try {
      const topic = unique('t');
      const held: Delivery[] = [];
      await t.subscribe(topic, { group: 'g', prefetch: 4 }, (d) => void held.push(d));
      await t.publish(topic, [msg('a'), msg('b')]);
      await until(() => held.length === 2);
      const lock = holdWriteLock(file);
      const gaps = eventLoopGaps();
      let releasedAt = 0;
      setTimeout(() => {
        releasedAt = performance.now();
        lock.release();
      }, 300);
      await held[0]!.ack(); // cannot commit before the release, which needs this event loop
      const ackedAt = performance.now();
      const maxGap = gaps.stop();
      assert.ok(releasedAt > 0 && ackedAt >= releasedAt, 'the ack committed after the lock was released');
      // Waiting in SQLite's busy handler would block the loop for the whole hold (and then fail).
      assert.ok(maxGap < 1000, `the event loop kept running (largest gap ${maxGap.toFixed(0)} ms)`);
      assert.deepEqual(await t.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 1, delayed: 0 });
      await held[1]!.ack();
      assert.deepEqual(await t.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 });
    } finally {
      await t.close();
    }
  });

  test('after busyTimeoutMs of retries the ack fails with SqliteBusyError and can be made again', async () => {
    const file = tmp.file(`${unique('f')}.db`);
    const t = sqlite({ path: file, busyTimeoutMs: 100, pollIntervalMs: 20 });
    try {
      const topic = unique('t');
      const held: Delivery[] = [];
      await t.subscribe(topic, { group: 'g', prefetch: 4 }, (d) => void held.push(d));
      await t.publish(topic, [msg('a')]);
      await until(() => held.length === 1);
      const lock = holdWriteLock(file);
      try {
        await assert.rejects(held[0]!.ack(), (err: unknown) => {
          assert.ok(err instanceof SqliteBusyError, String(err));
          return true;
        });
      } finally {
        lock.release();
      }
      await held[0]!.ack();
      await sleep(10);
      assert.deepEqual(await t.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 });
    } finally {
      await t.close();
    }
  });
});
