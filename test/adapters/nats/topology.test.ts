/**
 * topology() on NATS JetStream, seen from another transport (as `herald stats` in another process
 * sees it): the namespace's topics with messages and the groups whose durable consumers read them,
 * names decoded from subject tokens (or read from the consumer's description where a token is a
 * hash), without the scheduler, other tools' consumers or other namespaces; and
 * `herald stats --transport nats://…` listing the groups without --group.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { nats, natsStores } from '../../../src/adapters/nats/index.js';
import { Names, token, untoken } from '../../../src/adapters/nats/names.js';
import { assertReachable } from '../../support/services.js';
import { unique } from '../../support/wait.js';
import { dropNamespace, SHARED_URL, uniqueNamespace } from './harness.js';
import { herald } from '../../support/cli.js';

const body = new TextEncoder().encode('{}');
const namespaces: string[] = [];
const namespace = (what: string): string => {
  const ns = uniqueNamespace(what);
  namespaces.push(ns);
  return ns;
};
const transport = (ns: string) => nats({ servers: SHARED_URL, namespace: ns, onError: () => undefined });

before(() => assertReachable('nats'));
after(async () => {
  for (const ns of namespaces) await dropNamespace(SHARED_URL, ns);
});

test('untoken reverses token, and refuses hashed or malformed tokens', () => {
  for (const name of ['orders', 'shop.events', 'créé été', 'a_b', '=2E', 'x'.repeat(96)])
    assert.equal(untoken(token(name)), name, name);
  assert.equal(untoken(token('y'.repeat(200))), undefined, 'a name shortened to a hash');
  assert.equal(untoken(token('é'.repeat(40))), undefined, 'a name shortened to a hash');
  for (const bad of ['', 'a=2e', 'a=4A', 'a=', 'a=ZZ', 'a_b', 'a.b', '=C3', 'é'])
    assert.equal(untoken(bad), undefined, bad);
});

test('another transport lists the topics and their groups; internals, foreign consumers and other namespaces are left out', async () => {
  const ns = namespace('topo');
  const names = new Names(ns);
  const topic = 'shop.orders-é';
  const longGroup = `audit-${'x'.repeat(120)}`; // its token ends in a hash: the description names it
  const groups = ['Shipping', 'billing', longGroup].sort();
  const writer = transport(ns);
  for (const group of groups)
    await (await writer.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
  await writer.publish(topic, [{ id: '1', key: 'k', headers: {}, body }]);
  // A scheduled publish starts the scheduler's consumer (on the scheduled stream); a topic with
  // only scheduled messages is listed, as on the other transports.
  await writer.publish(topic, [{ id: '2', headers: {}, body }], { deliverAt: Date.now() + 3_600_000 });
  await writer.publish('later', [{ id: '3', headers: {}, body }], { deliverAt: Date.now() + 3_600_000 });

  // Written with the NATS client: a topic with messages nobody reads, a topic whose long name
  // only a hash in the subject shows, and consumers that are not Herald groups.
  const nc = await connect({ servers: SHARED_URL });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await js.publish(`${names.topicSubject('quiet')}._`, body);
  await js.publish(`${names.topicSubject('q'.repeat(200))}._`, body);
  await jsm.consumers.add(names.topicsStream, {
    durable_name: 'watcher',
    filter_subject: names.topicsSubjects,
    ack_policy: AckPolicy.Explicit,
  });
  await jsm.consumers.add(names.topicsStream, {
    name: `eph_${token('quiet')}`,
    filter_subject: `${names.topicSubject('quiet')}.>`,
    ack_policy: AckPolicy.None,
    inactive_threshold: 60_000_000_000,
  });
  // A description copied onto another consumer does not rename it.
  await jsm.consumers.add(names.topicsStream, {
    durable_name: names.consumer('quiet', 'copied'),
    description: `herald ${JSON.stringify({ group: 'forged', topic: 'quiet' })}`,
    filter_subject: `${names.topicSubject('quiet')}.>`,
    ack_policy: AckPolicy.Explicit,
  });
  await nc.close();
  const other = transport(namespace('elsewhere'));
  await (await other.subscribe(topic, { group: 'stranger', prefetch: 1 }, (d) => d.ack())).close();

  const reader = transport(ns);
  assert.deepEqual(await reader.topology(), [
    { topic: 'later', groups: [] },
    { topic: 'quiet', groups: ['copied'] },
    { topic, groups },
  ]);
  await Promise.all([writer.close(), other.close(), reader.close()]);
  await assert.rejects(reader.topology(), { name: 'ClosedError' });
});

test('herald stats --transport nats://… lists every group of the namespace without --group', async () => {
  const ns = namespace('stats');
  const topic = unique('invoices');
  const groups = [unique('ga'), unique('gb')].sort();
  const t = transport(ns);
  for (const group of groups)
    await (await t.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
  await t.publish(topic, [
    { id: 'a', headers: {}, body },
    { id: 'b', headers: {}, body },
  ]);
  await t.close();
  // The CLI opens the namespace's stores read-only (they must exist): create them as an app would.
  const stores = natsStores({ servers: SHARED_URL, namespace: ns });
  assert.equal(await stores.deadLetters.count({}), 0);
  await stores.close();
  const run = await herald(['stats', '--transport', `${SHARED_URL}?namespace=${ns}`, '--json']);
  assert.equal(run.code, 0, run.stderr);

  const out = JSON.parse(run.stdout) as {
    transport: string;
    groups: { topic: string; group: string; lag: number }[];
  };
  assert.equal(out.transport, 'nats');
  assert.deepEqual(
    out.groups.map((r) => [r.topic, r.group, r.lag]),
    groups.map((g) => [topic, g, 2]),
    'both groups, each 2 behind (they never consumed)',
  );
});
