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

  test('after busyTimeoutMs of retries acks fail with SqliteBusyError; made again they land, else the message comes back', async () => {
    // ADR 0042: the lease of a failed settle is no longer renewed, so it cannot stay here forever.
    const file = tmp.file(`${unique('f')}.db`);
    // The lock is held ~250 ms, well inside the lease, so renewals before its end succeed.
    const t = sqlite({ path: file, busyTimeoutMs: 100, pollIntervalMs: 20, visibilityTimeoutMs: 1000 });
    try {
      const topic = unique('t');
      const held: Delivery[] = [];
      await t.subscribe(topic, { group: 'g', prefetch: 4 }, (d) => void held.push(d));
      await t.publish(topic, [msg('a'), msg('b')]);
      await until(() => held.length === 2);
      const lock = holdWriteLock(file);
      try {
        for (const outcome of await Promise.allSettled([held[0]!.ack(), held[1]!.ack()])) {
          assert.equal(outcome.status, 'rejected');
          assert.ok(outcome.reason instanceof SqliteBusyError, String(outcome.reason));
        }
      } finally {
        lock.release();
      }
      const failedAt = Date.now();
      await held[0]!.ack(); // made again: it lands
      // Not made again: renewals every 333 ms would have kept b leased here for good.
      await until(() => held.length === 3, 4000, 'b redelivered');
      assert.equal(held[2]!.message.id, held[1]!.message.id);
      assert.equal(held[2]!.attempt, 2);
      assert.ok(Date.now() - failedAt <= 1000 + 1000, 'back within the visibility timeout and a poll');
      await held[2]!.ack();
      await sleep(1100);
      assert.equal(held.length, 3, 'a, acked on the second try, never came back');
      assert.deepEqual(await t.stats(topic, 'g'), { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 });
    } finally {
      await t.close();
    }
  });
});
