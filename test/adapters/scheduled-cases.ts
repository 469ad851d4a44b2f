/**
 * Scheduled publish cases for the transports that implement it with their own broker machinery
 * (NATS, Kafka): timing, unscheduled traffic meanwhile, cancel, stats and durability across a
 * transport restart. Each adapter's scheduled.test.ts runs them against its real broker.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Message, Transport } from '../../src/transport/transport.js';
import { sleep, unique, waitUntil } from '../support/wait.js';

export interface ScheduledHarness {
  /** A new transport instance on the same broker and namespace (a "process"). */
  create(): Promise<Transport>;
  /** Extra lateness allowed on top of max(50 ms, 10% of the delay), and why. */
  readonly slackMs: number;
  /** Delay of the scheduled messages: long enough for the publish and a subscribe to settle. */
  readonly delayMs: number;
  /** Time for `cancelScheduled` calls to be issued before the due time (ms). */
  readonly waitForDeliveryMs?: number;
}

interface Received {
  readonly id: string;
  readonly at: number;
}

function message(id: string, key?: string): Message {
  const body = new TextEncoder().encode(JSON.stringify({ id }));
  return key === undefined ? { id, headers: { h: 'v' }, body } : { id, key, headers: { h: 'v' }, body };
}

async function listen(
  t: Transport,
  topic: string,
  group: string,
  into: Received[],
): Promise<() => Promise<void>> {
  const sub = await t.subscribe(topic, { group, prefetch: 16, ordering: 'none' }, async (d) => {
    into.push({ id: d.message.id, at: Date.now() });
    await d.ack();
  });
  return () => sub.close();
}

function allowed(delayMs: number, slackMs: number): number {
  return Math.max(50, delayMs / 10) + slackMs;
}

export function runScheduledCases(name: string, h: ScheduledHarness): void {
  const wait = h.waitForDeliveryMs ?? 15_000;

  test(`${name}: not delivered before deliverAt, on time after it; unscheduled messages flow meanwhile; stats count them`, async (tc) => {
    const t = await h.create();
    try {
      const topic = unique('sched-time');
      const got: Received[] = [];
      const stop = await listen(t, topic, unique('g'), got);
      const deliverAt = Date.now() + h.delayMs;
      const ids = [unique('s1'), unique('s2'), unique('s3')];
      await t.publish(
        topic,
        ids.map((id, i) => message(id, i === 0 ? 'k' : undefined)),
        { deliverAt },
      );
      const publishedAt = Date.now();
      assert.equal((await t.stats!(topic, 'anyone')).scheduled, 3);
      const now = unique('now');
      await t.publish(topic, [message(now, 'k')]);
      await waitUntil(() => got.some((r) => r.id === now), 'the unscheduled message', wait);
      assert.ok(Date.now() < deliverAt, 'the unscheduled message arrived before the scheduled ones were due');
      assert.deepEqual(
        got.map((r) => r.id),
        [now],
        'nothing scheduled arrived early',
      );
      await waitUntil(() => got.length === 4, 'the scheduled messages', h.delayMs + wait);
      const bound = allowed(deliverAt - publishedAt, h.slackMs);
      tc.diagnostic(
        `lateness ms: ${got
          .slice(1)
          .map((r) => r.at - deliverAt)
          .join(', ')} (bound ${bound})`,
      );
      for (const r of got.slice(1)) {
        assert.ok(ids.includes(r.id));
        assert.ok(r.at >= deliverAt, `${r.id} arrived ${deliverAt - r.at} ms before deliverAt`);
        assert.ok(
          r.at - deliverAt <= bound,
          `${r.id} arrived ${r.at - deliverAt} ms late (bound ${bound} ms)`,
        );
      }
      await waitUntil(async () => (await t.stats!(topic, 'anyone')).scheduled === 0, 'scheduled back to 0');
      await stop();
    } finally {
      await t.close();
    }
  });

  test(`${name}: cancel before due removes the message for good; counts 1, then 0`, async () => {
    const t = await h.create();
    try {
      const topic = unique('sched-cancel');
      const got: Received[] = [];
      const stop = await listen(t, topic, unique('g'), got);
      const deliverAt = Date.now() + h.delayMs;
      const [gone, kept] = [unique('gone'), unique('kept')];
      await t.publish(topic, [message(gone), message(kept)], { deliverAt });
      assert.equal((await t.stats!(topic, 'anyone')).scheduled, 2);
      assert.equal(await t.cancelScheduled!(topic, [gone]), 1);
      assert.equal(await t.cancelScheduled!(topic, [gone]), 0, 'a second cancel finds nothing');
      assert.equal(await t.cancelScheduled!(topic, [unique('never-scheduled')]), 0);
      assert.equal(await t.cancelScheduled!(unique('other-topic'), [kept]), 0, 'the id on another topic');
      assert.ok(Date.now() < deliverAt, 'the cancels ran before the due time');
      assert.equal((await t.stats!(topic, 'anyone')).scheduled, 1);
      await waitUntil(() => got.some((r) => r.id === kept), 'the message not cancelled', h.delayMs + wait);
      await sleep(allowed(h.delayMs, h.slackMs) + 1000);
      assert.deepEqual(
        got.map((r) => r.id),
        [kept],
        'the cancelled message never arrives',
      );
      assert.equal(await t.cancelScheduled!(topic, [kept]), 0, 'delivered already: nothing to cancel');
      assert.equal((await t.stats!(topic, 'anyone')).scheduled, 0);
      await stop();
    } finally {
      await t.close();
    }
  });

  test(`${name}: durable: scheduled by a closed transport, delivered on time by a new one, cancellable from it`, async (tc) => {
    const topic = unique('sched-durable');
    const first = await h.create();
    const deliverAt = Date.now() + h.delayMs;
    const [kept, gone] = [unique('kept'), unique('gone')];
    try {
      await first.publish(topic, [message(kept, 'k1'), message(gone, 'k2')], { deliverAt });
      const publishedAt = Date.now();
      await first.close();

      const second = await h.create();
      try {
        const got: Received[] = [];
        const stop = await listen(second, topic, unique('g'), got);
        assert.equal((await second.stats!(topic, 'anyone')).scheduled, 2);
        assert.equal(await second.cancelScheduled!(topic, [gone]), 1);
        assert.ok(Date.now() < deliverAt, 'the cancel ran before the due time');
        await waitUntil(() => got.length >= 1, 'the scheduled message', h.delayMs + wait);
        const r = got[0]!;
        assert.equal(r.id, kept);
        assert.ok(r.at >= deliverAt, `arrived ${deliverAt - r.at} ms before deliverAt`);
        const bound = allowed(deliverAt - publishedAt, h.slackMs);
        tc.diagnostic(`lateness ms: ${r.at - deliverAt} (bound ${bound})`);
        assert.ok(r.at - deliverAt <= bound, `arrived ${r.at - deliverAt} ms late (bound ${bound} ms)`);
        await sleep(1000);
        assert.deepEqual(
          got.map((x) => x.id),
          [kept],
          'the cancelled message never arrives',
        );
        assert.equal((await second.stats!(topic, 'anyone')).scheduled, 0);
        await stop();
      } finally {
        await second.close();
      }
    } finally {
      await first.close();
    }
  });

  test(`${name}: deliverAt in the past delivers at once; bad options are rejected naming the field`, async () => {
    const t = await h.create();
    try {
      assert.equal(t.capabilities.scheduledPublish, true);
      const topic = unique('sched-past');
      const got: Received[] = [];
      const stop = await listen(t, topic, unique('g'), got);
      const id = unique('past');
      await t.publish(topic, [message(id)], { deliverAt: Date.now() - 60_000 });
      await waitUntil(() => got.some((r) => r.id === id), 'the message due in the past', wait);
      await assert.rejects(t.publish(topic, [message(unique('x'))], { deliverAt: Number.NaN }), /deliverAt/);
      await assert.rejects(
        t.publish(topic, [message(unique('x'))], { delayMs: 5 } as never),
        /delayMs.*known: deliverAt/,
      );
      await stop();
    } finally {
      await t.close();
    }
  });
}
