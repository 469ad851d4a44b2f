/**
 * Scheduled publish on NATS JetStream 2.9 (ADR 0904), against the shared nats-server: the shared
 * cases plus hostile input on the scheduled stream written with a plain NATS client.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { nats, Names } from '../../../src/adapters/nats/index.js';
import { needs } from '../../support/services.js';
import { unique, waitUntil } from '../../support/wait.js';
import { runScheduledCases } from '../scheduled-cases.js';
import { dropNamespace, SHARED_URL, uniqueNamespace } from './harness.js';

describe('nats transport: scheduled publish', await needs('nats'), () => {
  const namespace = uniqueNamespace('sched');
  after(() => dropNamespace(SHARED_URL, namespace));
  const errors: string[] = [];
  const create = async () => {
    const t = nats({
      servers: SHARED_URL,
      namespace,
      onError: (e, c) => void errors.push(`${c}: ${e.message}`),
    });
    await t.start();
    return t;
  };

  // The server redelivers a nak(delay) 0-10 ms late (ADR 0900); the move is a claim, a publish
  // and a delete, and the group's pull wakes at once: 150 ms covers that on an idle machine.
  runScheduledCases('nats', { create, slackMs: 150, delayMs: 1500 });

  test('a foreign message on the scheduled subjects is reported and removed; scheduling goes on', async () => {
    const t = await create();
    try {
      const topic = unique('sched-hostile');
      const got: string[] = [];
      const sub = await t.subscribe(topic, { group: unique('g'), prefetch: 4 }, async (d) => {
        got.push(d.message.id);
        await d.ack();
      });
      const nc = await connect({ servers: SHARED_URL });
      const names = new Names(namespace);
      nc.publish(`${names.scheduledTopicSubject(topic)}.foreign`, new Uint8Array([0xff, 0x00]));
      await nc.flush();
      const id = unique('after');
      await t.publish(topic, [{ id, headers: {}, body: new Uint8Array([1]) }], {
        deliverAt: Date.now() + 200,
      });
      await waitUntil(() => got.includes(id), 'the scheduled message after the foreign one');
      await waitUntil(
        async () => (await t.stats(topic, 'anyone')).scheduled === 0,
        'the foreign message removed',
      );
      assert.ok(errors.some((e) => /not a scheduled message/.test(e)));
      assert.deepEqual(got, [id]);
      await nc.close();
      await sub.close();
    } finally {
      await t.close();
    }
  });
});
