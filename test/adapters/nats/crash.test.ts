/**
 * Crash test: a child process consumes 20 000 events with concurrency 64 (ordering off: this
 * test is about leases; per-key order is the conformance suite's) and is SIGKILLed
 * repeatedly while a producer keeps publishing, on a private nats-server. Every published event
 * must be handled (the killed child's leases run out after ackWaitMs and go to the next child),
 * and with idempotency each side effect is applied exactly once.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { AckPolicy, jetstreamManager } from '@nats-io/jetstream';
import { createHerald } from '../../../src/index.js';
import { nats } from '../../../src/adapters/nats/index.js';
import { sleep, unique, waitUntil } from '../../support/wait.js';
import { forkReady, killAndWait } from '../../support/child.js';
import { OwnNats } from './harness.js';

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'crash-consumer.ts');
const ownServer =
  OwnNats.available() || process.env.CI === 'true' ? {} : { skip: 'nats-server binary not found' };

describe('nats transport: SIGKILLed consumer', ownServer, () => {
  const namespace = 'crash';
  const children = new Set<ChildProcess>();
  let server: OwnNats;
  let nc: NatsConnection;
  let effects: KV;
  before(async () => {
    server = await OwnNats.start();
    nc = await connect({ servers: server.url });
    effects = await new Kvm(nc).create(`${namespace}-effects`);
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await nc?.close();
    await server?.stop();
  });

  const spawnConsumer = (env: Record<string, string>): Promise<ChildProcess> =>
    forkReady(fixture, env, children);

  /** Effects written so far: the pending count of a fresh consumer on the effect subjects. */
  async function countEffects(): Promise<number> {
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${namespace}-effects`;
    const info = await jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      filter_subject: `$KV.${namespace}-effects.effect.>`,
      inactive_threshold: 5_000_000_000,
    });
    await jsm.consumers.delete(stream, info.name).catch(() => undefined);
    return info.num_pending;
  }

  async function count(prefix: string): Promise<Set<string>> {
    const keys = new Set<string>();
    for await (const k of await effects.keys(`${prefix}.>`)) keys.add(k.slice(prefix.length + 1));
    return keys;
  }

  test(
    '20 000 events, 6 kills: every event handled, every side effect applied exactly once',
    { timeout: 420_000 },
    async () => {
      const topic = unique('crash');
      const env = {
        CRASH_NATS_URL: server.url,
        CRASH_NAMESPACE: namespace,
        CRASH_TOPIC: topic,
        CRASH_GROUP: unique('g'),
        CRASH_ACK_WAIT_MS: '1000',
        CRASH_ORDERING: 'none',
      };
      const producer = await createHerald({
        service: 'crash-producer',
        transport: nats({ servers: server.url, namespace }),
        routing: { 'crash.*': topic },
      });
      const published: string[] = [];
      const production = (async () => {
        for (let batch = 0; batch < 100; batch++) {
          const events = await producer.publishBatch(
            Array.from({ length: 200 }, (_, i) => ({
              event: 'crash.item.made',
              payload: { batch, i },
              options: { aggregateId: `agg-${(batch * 200 + i) % 2000}` },
            })),
          );
          published.push(...events.map((e) => e.id));
          await sleep(20);
        }
      })();

      const t0 = Date.now();
      let kills = 0;
      let child = await spawnConsumer(env);
      for (let round = 0; round < 6; round++) {
        await sleep(700 + Math.random() * 700);
        await killAndWait(child);
        kills++;
        child = await spawnConsumer(env);
      }
      await production;
      console.log(`produced in ${Date.now() - t0} ms; effects so far ${await countEffects()}`);
      const total = published.length;
      assert.equal(total, 20_000);
      let handled = new Set<string>();
      const started = Date.now();
      await waitUntil(
        async () => (handled = await count('effect')).size === total,
        'every event handled',
        240_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message} (have ${handled.size} of ${total})`);
      });
      const drainMs = Date.now() - started;
      await sleep(1500); // > ackWaitMs: a late duplicate would have shown up by now
      await killAndWait(child);
      await producer.stop();

      const missing = published.filter((id) => !handled.has(id));
      assert.deepEqual(missing, [], 'events never handled');
      const reruns = await count('rerun');
      const redelivered = await count('redelivered');
      assert.equal(kills, 6);
      assert.ok(redelivered.size > 0, 'the kills interrupted in-flight work that was redelivered');
      // A kill between the effect and the idempotency "done" mark lets the next process run the
      // handler again (JetStream has no transaction over two keys, ADR 0902); the effect's own
      // create-by-event-id turns that re-run into a no-op. Only kills cause re-runs: at most the
      // 64 deliveries in flight per kill.
      assert.ok(reruns.size <= kills * 64, `${reruns.size} re-runs for ${kills} kills`);
      console.log(
        `crash: ${total} events, ${kills} kills, drained ${drainMs} ms after production, ${redelivered.size} redelivered, ${reruns.size} re-runs`,
      );
    },
  );
});
