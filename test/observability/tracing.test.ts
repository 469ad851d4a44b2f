import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createHerald, MemoryTransport, type Transport } from '../../src/index.js';
import type { Delivery, DeliveryHandler, SubscribeOptions } from '../../src/transport/transport.js';
import { sqlite } from '../../src/adapters/sqlite/index.js';
import { createObservability, SPAN_STATE_KEY } from '../../src/observability/index.js';
import { LineSink } from './helpers.js';
import { unique, waitUntil } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-obs-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function setup(exporter: InMemorySpanExporter, sink?: LineSink) {
  return createObservability({
    serviceName: 'svc-trace',
    metrics: false,
    tracing: { exporter, simpleProcessor: true, registerGlobal: false },
    logging: sink ? { destination: sink, level: 'debug', pretty: false } : false,
  });
}

const byName = (spans: ReadableSpan[], name: string): ReadableSpan[] => spans.filter((s) => s.name === name);

/**
 * A memory transport whose nacks report back late: the redelivery comes due and runs before the nack's
 * promise settles, as on SQLite when one group commit applies the nack and fetches the retry.
 */
function lateNackTransport(): Transport {
  const inner = new MemoryTransport();
  return Object.assign(Object.create(inner) as Transport, {
    subscribe: (topic: string, options: SubscribeOptions, onDelivery: DeliveryHandler) =>
      inner.subscribe(topic, options, (d) =>
        onDelivery(
          Object.assign(Object.create(d) as Delivery, {
            nack: async (o?: { delayMs?: number }) => {
              await d.nack(o);
              await new Promise((resolve) => setTimeout(resolve, 50));
            },
          }),
        ),
      ),
  });
}

/** Label, factory, and the transport's own name (the messaging system in spans and logs). */
const transports: [string, () => Transport, string][] = [
  ['memory', () => new MemoryTransport(), 'memory'],
  ['memory, nacks reported late', lateNackTransport, 'memory'],
  ['sqlite', () => sqlite({ path: join(dir, `${unique('t')}.db`), pollIntervalMs: 10 }), 'sqlite'],
];

for (const [name, makeTransport, system] of transports) {
  describe(`tracing across the ${name} transport`, () => {
    test('producer → consumer: child of the send span, linked to it, handler runs inside it', async () => {
      const exporter = new InMemorySpanExporter();
      const sink = new LineSink();
      const obs = setup(exporter, sink);
      const herald = obs.instrument(await createHerald({ service: 'svc-trace', transport: makeTransport() }));
      const group = unique('g');
      let seen:
        { traceId: string; spanId: string; stateSpan: unknown; headers: Record<string, string> } | undefined;
      herald.subscribe({
        group,
        events: ['orders.order.placed'],
        handler: (_e, ctx) => {
          const active = trace.getActiveSpan();
          obs.logger.info({ step: 'inside' }, 'handler log');
          seen = {
            traceId: active!.spanContext().traceId,
            spanId: active!.spanContext().spanId,
            stateSpan: ctx.state[SPAN_STATE_KEY],
            headers: ctx.message.headers,
          };
        },
      });
      await herald.start();
      const sent = await herald.publish('orders.order.placed', { n: 1 });
      await waitUntil(() => seen !== undefined, 'handled');
      await waitUntil(
        () => byName(exporter.getFinishedSpans(), 'process orders.events').length === 1,
        'process span ended',
      );
      const [send] = byName(exporter.getFinishedSpans(), 'send orders.events');
      const [proc] = byName(exporter.getFinishedSpans(), 'process orders.events');
      assert.ok(send && proc);
      assert.equal(send.kind, SpanKind.PRODUCER);
      assert.equal(proc.kind, SpanKind.CONSUMER);
      assert.equal(proc.spanContext().traceId, send.spanContext().traceId);
      assert.equal(
        proc.parentSpanContext?.spanId,
        send.spanContext().spanId,
        'consumer span is a child of the producer span',
      );
      assert.equal(proc.links[0]?.context.spanId, send.spanContext().spanId, 'and linked to it');
      assert.match(
        seen!.headers.traceparent ?? '',
        new RegExp(`^00-${send.spanContext().traceId}-${send.spanContext().spanId}-01$`),
      );
      assert.equal(seen!.traceId, proc.spanContext().traceId);
      assert.equal(seen!.spanId, proc.spanContext().spanId, 'handler runs in the process span context');
      assert.equal(
        (seen!.stateSpan as { spanContext(): { spanId: string } }).spanContext().spanId,
        proc.spanContext().spanId,
      );
      assert.deepEqual(
        {
          system: send.attributes['messaging.system'],
          dest: send.attributes['messaging.destination.name'],
          op: send.attributes['messaging.operation.type'],
          id: send.attributes['messaging.message.id'],
        },
        { system, dest: 'orders.events', op: 'send', id: sent.id },
      );
      assert.equal(proc.attributes['messaging.operation.type'], 'process');
      assert.equal(proc.attributes['messaging.consumer.group.name'], group);
      assert.equal(proc.attributes['messaging.message.id'], sent.id);
      assert.equal(proc.status.code, SpanStatusCode.UNSET);
      // Logs written in the handler and by the lifecycle logger carry the span's ids.
      const inside = sink.find('handler log')[0];
      assert.equal(inside?.trace_id, proc.spanContext().traceId);
      assert.equal(inside?.span_id, proc.spanContext().spanId);
      const handled = sink.find('event handled')[0];
      assert.equal(handled?.trace_id, proc.spanContext().traceId);
      assert.equal(handled?.event_id, sent.id);
      const published = sink.find('event published')[0];
      assert.equal(published?.span_id, send.spanContext().spanId);
      await herald.stop();
    });

    test('failures: error status, retry_scheduled and dead_lettered span events, attempt attribute', async () => {
      const exporter = new InMemorySpanExporter();
      const obs = setup(exporter);
      const herald = obs.instrument(await createHerald({ service: 'svc-trace', transport: makeTransport() }));
      herald.subscribe({
        group: unique('g'),
        events: ['orders.order.failed'],
        retry: { maxAttempts: 2, initialDelayMs: 5, multiplier: 1, maxDelayMs: 5, jitter: false },
        handler: () => {
          throw new Error('boom');
        },
      });
      await herald.start();
      await herald.publish('orders.order.failed', {});
      await waitUntil(
        () => byName(exporter.getFinishedSpans(), 'process orders.events').length === 2,
        'two attempts traced',
      );
      const spans = byName(exporter.getFinishedSpans(), 'process orders.events');
      const [first, second] = spans.sort(
        (a, b) =>
          Number(a.attributes['herald.delivery.attempt']) - Number(b.attributes['herald.delivery.attempt']),
      );
      assert.equal(first?.attributes['herald.delivery.attempt'], 1);
      assert.equal(second?.attributes['herald.delivery.attempt'], 2);
      for (const s of spans) {
        assert.equal(s.status.code, SpanStatusCode.ERROR);
        assert.equal(s.status.message, 'boom');
        assert.ok(s.events.some((e) => e.name === 'exception'));
      }
      assert.ok(first?.events.some((e) => e.name === 'retry_scheduled'));
      assert.ok(second?.events.some((e) => e.name === 'dead_lettered'));
      assert.equal(
        first?.parentSpanContext?.spanId,
        second?.parentSpanContext?.spanId,
        'both attempts hang off the same producer span',
      );
      await herald.stop();
    });
  });
}

describe('tracing details', () => {
  test('batch publish: one send span per topic with messaging.batch.message_count; every message carries it', async () => {
    const exporter = new InMemorySpanExporter();
    const obs = setup(exporter);
    const herald = obs.instrument(
      await createHerald({ service: 'svc-trace', transport: new MemoryTransport() }),
    );
    const group = unique('g');
    const parents = new Set<string>();
    herald.subscribe({
      group,
      events: ['batch.item.added'],
      handler: () => void parents.add(trace.getActiveSpan()!.spanContext().traceId),
    });
    await herald.start();
    await herald.publishBatch([1, 2, 3].map((n) => ({ event: 'batch.item.added', payload: { n } })));
    await waitUntil(
      () => byName(exporter.getFinishedSpans(), 'process batch.events').length === 3,
      'three processed',
    );
    const sends = byName(exporter.getFinishedSpans(), 'send batch.events');
    assert.equal(sends.length, 1);
    assert.equal(sends[0]?.attributes['messaging.batch.message_count'], 3);
    assert.deepEqual([...parents], [sends[0]!.spanContext().traceId]);
    await herald.stop();
  });

  test('event store appends are spans under the caller; sampling 0 records nothing but still propagates', async () => {
    const exporter = new InMemorySpanExporter();
    const obs = createObservability({
      serviceName: 's',
      metrics: false,
      logging: false,
      tracing: { exporter, simpleProcessor: true, registerGlobal: false, sampleRate: 0 },
    });
    const herald = obs.instrument(await createHerald({ service: 's', transport: new MemoryTransport() }));
    let traceparent: string | undefined;
    herald.subscribe({
      group: unique('g'),
      events: ['x.y.z'],
      handler: (_e, ctx) => void (traceparent = ctx.message.headers.traceparent),
    });
    await herald.start();
    await herald.publish('x.y.z', {});
    await waitUntil(() => traceparent !== undefined, 'handled');
    assert.match(traceparent!, /-00$/, 'unsampled flag travels');
    assert.equal(exporter.getFinishedSpans().length, 0);
    await herald.stop();

    const exporter2 = new InMemorySpanExporter();
    const obs2 = setup(exporter2);
    const { MemoryEventStore } = await import('../../src/index.js');
    const store = obs2.eventStore(new MemoryEventStore());
    await obs2.tracer.startActiveSpan('request', async (root) => {
      await store.append([
        {
          id: 'e1',
          type: 'a.b.c',
          version: 'v1',
          source: 's',
          time: new Date().toISOString(),
          payload: {},
          metadata: {},
        },
      ]);
      root.end();
    });
    const [append] = byName(exporter2.getFinishedSpans(), 'append events');
    const [root] = byName(exporter2.getFinishedSpans(), 'request');
    assert.equal(append?.parentSpanContext?.spanId, root?.spanContext().spanId);
    await obs2.shutdown();
  });

  test('ratio sampling: a root is decided once, and the header, the producer span and the consumer agree', async () => {
    const exporter = new InMemorySpanExporter();
    const obs = createObservability({
      serviceName: 's',
      metrics: false,
      logging: false,
      tracing: { exporter, simpleProcessor: true, registerGlobal: false, sampleRate: 0.5 },
    });
    const herald = obs.instrument(await createHerald({ service: 's', transport: new MemoryTransport() }));
    const seen = new Map<string, string>();
    herald.subscribe({
      group: unique('g'),
      events: ['x.y.z'],
      concurrency: 16,
      handler: (e, ctx) => void seen.set(e.id, ctx.message.headers.traceparent ?? ''),
    });
    await herald.start();
    const N = 200;
    for (let i = 0; i < N; i++) await herald.publish('x.y.z', { i });
    await waitUntil(() => seen.size === N, 'handled');
    const sends = new Map(
      byName(exporter.getFinishedSpans(), 'send x.events').map((s) => [s.spanContext().traceId, s]),
    );
    const processes = byName(exporter.getFinishedSpans(), 'process x.events');
    let sampled = 0;
    for (const traceparent of seen.values()) {
      const [, traceId, spanId, flags] = traceparent.split('-');
      const send = sends.get(traceId!);
      if (flags === '01') {
        sampled++;
        assert.equal(send?.spanContext().spanId, spanId, 'a sampled header names its exported send span');
      } else {
        assert.equal(flags, '00');
        assert.equal(send, undefined, 'an unsampled header has no exported span');
      }
    }
    assert.equal(sends.size, sampled, 'every exported send span is behind a sampled header');
    assert.equal(processes.length, sampled, 'consumers follow the producer decision');
    // 200 fair coin flips: outside 60..140 has a chance below 1e-8.
    assert.ok(sampled > 60 && sampled < 140, `sampled ${sampled} of ${N} at ratio 0.5`);
    await herald.stop();
  });

  test('an unreachable OTLP collector neither blocks publish/handle nor shutdown', async () => {
    const port = await closedPort();
    const obs = createObservability({
      serviceName: 'svc-outage',
      metrics: false,
      logging: false,
      tracing: {
        exporter: 'otlp',
        otlpUrl: `http://127.0.0.1:${port}/v1/traces`,
        registerGlobal: false,
        shutdownTimeoutMs: 1000,
      },
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-outage', transport: new MemoryTransport() }),
    );
    let handled = 0;
    herald.subscribe({ group: unique('g'), events: ['out.age.test'], handler: () => void handled++ });
    await herald.start();
    for (let i = 0; i < 50; i++) await herald.publish('out.age.test', { i });
    await waitUntil(() => handled === 50, 'all handled while the collector is down');
    const started = Date.now();
    await herald.stop(); // runs obs.shutdown() through the plugin
    // Bounded, not fast: without the cap the exporter would retry for its own 10 s timeout.
    assert.ok(Date.now() - started < 8000, `shutdown took ${Date.now() - started} ms`);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
