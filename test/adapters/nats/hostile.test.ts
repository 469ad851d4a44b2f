/**
 * Hostile input written with a plain NATS client onto a topic's subjects: no Herald headers and a
 * garbage body, or a broken Herald header. Each goes to the dead-letter store with reason `decode`
 * and the group goes on with the next message.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { connect, headers } from '@nats-io/transport-node';
import { createHerald } from '../../../src/index.js';
import { nats, natsStores, Names } from '../../../src/adapters/nats/index.js';
import { needs } from '../../support/services.js';
import { unique, waitUntil } from '../../support/wait.js';
import { dropNamespace, SHARED_URL, uniqueNamespace } from './harness.js';

describe('nats transport: hostile input from a plain NATS client', await needs('nats'), () => {
  const namespace = uniqueNamespace('hostile');
  after(() => dropNamespace(SHARED_URL, namespace));

  test('garbage without Herald headers is dead-lettered with reason decode; the group goes on', async () => {
    const topic = unique('hostile');
    const stores = natsStores({ servers: SHARED_URL, namespace });
    const herald = await createHerald({
      service: 'hostile',
      transport: nats({ servers: SHARED_URL, namespace, onError: () => undefined }),
      stores: { deadLetters: stores.deadLetters },
      routing: { 'hostile.*': topic },
    });
    const handled: string[] = [];
    herald.subscribe({
      group: unique('g'),
      events: ['hostile.thing.done'],
      handler: (e) => void handled.push(e.id),
    });
    await herald.start();

    // Plain core-NATS publishes: the stream stores whatever lands on its subjects.
    const nc = await connect({ servers: SHARED_URL });
    const subject = new Names(namespace).topicSubject(topic);
    nc.publish(`${subject}._`, new Uint8Array([0xff, 0x00, 0x7b, 0x13, 0x37]));
    const broken = headers();
    broken.set('Herald', '{"i": not json');
    nc.publish(`${subject}.kgarbage`, 'also not an event', { headers: broken });
    await nc.flush();
    await nc.close();
    const good = await herald.publish('hostile.thing.done', { ok: true }, { aggregateId: 'a' });

    await waitUntil(() => handled.includes(good.id), 'the good event after the garbage');
    await waitUntil(async () => (await stores.deadLetters.count()) === 2, 'two dead letters');
    const { items } = await stores.deadLetters.list();
    assert.deepEqual(
      items.map((e) => e.reason),
      ['decode', 'decode'],
    );
    assert.deepEqual(
      [...items.find((e) => e.message.body.length === 5)!.message.body],
      [0xff, 0x00, 0x7b, 0x13, 0x37],
    );
    assert.deepEqual(handled, [good.id]);
    await herald.stop();
    await stores.close();
  });
});
