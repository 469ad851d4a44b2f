import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createHerald,
  MemoryEventStore,
  MemoryTransport,
  type EventEnvelope,
  type Message,
  type Observer,
} from '../../src/index.js';

/** A MemoryTransport whose publish fails while `failing` is set. */
class FlakyTransport extends MemoryTransport {
  failing = false;
  override async publish(topic: string, messages: readonly Message[]): Promise<void> {
    if (this.failing) throw new Error('broker down');
    return super.publish(topic, messages);
  }
}

type Seen = { kind: string; topic: string; ids: string[]; durationMs?: number; error?: string };

function recorder(seen: Seen[]): Observer {
  return {
    onPublished: ({ topic, events, durationMs }) =>
      void seen.push({ kind: 'published', topic, ids: events.map((e) => e.id), durationMs }),
    onPublishFailed: ({ topic, events, error }) =>
      void seen.push({ kind: 'failed', topic, ids: events.map((e) => e.id), error: error.message }),
  };
}

describe('publish observers', () => {
  for (const withStore of [false, true]) {
    test(`onPublished before publish resolves, onPublishFailed with the rejection${withStore ? ' (event store)' : ''}`, async () => {
      const transport = new FlakyTransport();
      const herald = await createHerald({
        service: 'obs',
        transport,
        ...(withStore ? { stores: { events: new MemoryEventStore() } } : {}),
      });
      const seen: Seen[] = [];
      herald.observe(recorder(seen));

      const e = await herald.publish('obs.thing.done', { n: 1 });
      assert.equal(seen.length, 1, 'told before the publish resolved');
      assert.equal(seen[0]!.kind, 'published');
      assert.deepEqual(seen[0]!.ids, [e.id]);
      assert.equal(typeof seen[0]!.durationMs, 'number');
      assert.ok(seen[0]!.durationMs! >= 0);

      const batch: EventEnvelope[] = await herald.publishBatch([
        { event: 'obs.thing.done', payload: { n: 2 } },
        { event: 'obs.thing.done', payload: { n: 3 } },
      ]);
      assert.equal(seen.length, 2);
      assert.deepEqual(
        seen[1]!.ids,
        batch.map((b) => b.id),
      );

      transport.failing = true;
      await assert.rejects(herald.publish('obs.thing.done', { n: 4 }), /broker down/);
      assert.equal(seen.length, 3);
      assert.equal(seen[2]!.kind, 'failed');
      assert.equal(seen[2]!.error, 'broker down');
      await herald.stop();
    });
  }

  test('an observer of failures alone is told of them, and of nothing else', async () => {
    const transport = new FlakyTransport();
    const herald = await createHerald({ service: 'obs', transport });
    const failed: string[] = [];
    herald.observe({ onPublishFailed: ({ error }) => void failed.push(error.message) });
    await herald.publish('obs.thing.done', {});
    transport.failing = true;
    await assert.rejects(herald.publish('obs.thing.done', {}), /broker down/);
    assert.deepEqual(failed, ['broker down']);
    await herald.stop();
  });

  test('an observer added while a publish is in flight is told a duration of 0', async () => {
    let release: () => void = () => undefined;
    class SlowTransport extends MemoryTransport {
      override async publish(topic: string, messages: readonly Message[]): Promise<void> {
        await new Promise<void>((r) => (release = r));
        return super.publish(topic, messages);
      }
    }
    const herald = await createHerald({ service: 'obs', transport: new SlowTransport() });
    herald.observe({ onPublishFailed: () => undefined });
    const seen: Seen[] = [];
    const sent = herald.publish('obs.thing.done', {});
    herald.observe(recorder(seen));
    await new Promise((r) => setImmediate(r));
    release();
    await sent;
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.durationMs, 0);
    await herald.stop();
  });
});
