/**
 * topology() on Kafka (ADR 0924): the namespace's topics and the groups that read them, seen from
 * another transport (as `herald stats` in another process sees them), without Herald's own
 * topics and scheduler group; and `herald stats --transport kafka://…` listing the groups.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { unique } from '../../support/wait.js';
import {
  kafkaAvailable,
  REAL_BROKERS,
  startCluster,
  testTransport,
  uniqueNamespace,
  type TestCluster,
} from './harness.js';
import { herald } from '../../support/cli.js';

const body = new TextEncoder().encode('{}');

describe('kafka topology', kafkaAvailable(), () => {
  let cluster: TestCluster;
  before(async () => {
    cluster = await startCluster();
  });
  after(() => cluster.stop());

  test('another transport lists the topics and their groups; Herald internals and other namespaces are left out', async () => {
    const namespace = uniqueNamespace('topo');
    const topic = unique('orders');
    const quiet = unique('quiet');
    const groups = [unique('billing'), unique('shipping')].sort();
    const writer = testTransport(cluster.brokers, namespace);
    for (const group of groups)
      await (await writer.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
    await writer.publish(topic, [{ id: '1', headers: {}, body }]);
    // A scheduled publish creates the schedule topic and starts the scheduler group.
    await writer.publish(topic, [{ id: '2', headers: {}, body }], { deliverAt: Date.now() + 3_600_000 });
    // Written outside Herald: a topic nobody reads, and a registry record that is not one.
    execFileSync('kcat', ['-b', cluster.brokers, '-P', '-t', `${namespace}.${quiet}`], { input: 'x' });
    execFileSync('kcat', ['-b', cluster.brokers, '-P', '-t', `${namespace}.herald.groups`], {
      input: 'junk',
    });
    const other = testTransport(cluster.brokers, uniqueNamespace('elsewhere'));
    await (await other.subscribe(topic, { group: 'stranger', prefetch: 1 }, (d) => d.ack())).close();

    const errors: string[] = [];
    const reader = testTransport(cluster.brokers, namespace, {
      onError: (err, context) => errors.push(`${context}: ${err.message}`),
    });
    const listed = await reader.topology();
    assert.deepEqual(
      listed,
      [
        { topic, groups },
        { topic: quiet, groups: [] },
      ].sort((a, b) => a.topic.localeCompare(b.topic)),
      'no herald.scheduled, no herald.groups, no scheduler group, nothing from the other namespace',
    );
    if (!REAL_BROKERS)
      assert.ok(
        errors.some((e) => /do not implement ListGroups/.test(e)),
        `the mock's missing ListGroups is reported: ${errors.join(' | ')}`,
      );
    await Promise.all([writer.close(), other.close(), reader.close()]);
  });

  test('herald stats --transport kafka://… lists every group of the namespace', async () => {
    const namespace = uniqueNamespace('stats');
    const topic = unique('invoices');
    const groups = [unique('ga'), unique('gb')].sort();
    const t = testTransport(cluster.brokers, namespace);
    for (const group of groups)
      await (await t.subscribe(topic, { group, prefetch: 1 }, (d) => d.ack())).close();
    await t.publish(topic, [
      { id: 'a', headers: {}, body },
      { id: 'b', headers: {}, body },
    ]);
    await t.close();
    const run = await herald([
      'stats',
      '--transport',
      `kafka://${cluster.brokers}?namespace=${namespace}`,
      '--json',
    ]);
    assert.equal(run.code, 0, run.stderr);

    const out = JSON.parse(run.stdout) as {
      transport: string;
      groups: { topic: string; group: string; lag: number }[];
    };
    assert.equal(out.transport, 'kafka');
    assert.deepEqual(
      out.groups.map((r) => [r.topic, r.group, r.lag]),
      groups.map((g) => [topic, g, 2]),
      'both groups, each 2 behind (they never consumed)',
    );
  });
});
