import assert from 'node:assert/strict';
import { test } from 'node:test';
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Registry } from 'prom-client';
import { SagaMetrics, SagaTracing } from '../../src/observability/index.js';
import { defineSaga, MemorySagaStore, SagaRunner } from '../../src/saga/index.js';

const saga = defineSaga<{ fail: boolean }>('order')
  .step('reserve', { run: () => 'r', compensate: () => undefined })
  .step('charge', {
    run: (ctx) => {
      if (ctx.input.fail) throw new Error('declined');
    },
  });

test('saga metrics count starts, final statuses, durations and steps per saga type', async () => {
  const registry = new Registry();
  const runner = new SagaRunner({
    store: new MemorySagaStore(),
    sagas: [saga],
    pollIntervalMs: 10,
    observers: [new SagaMetrics({ registry })],
  });
  runner.start();
  for (const fail of [false, false, true]) await runner.wait(await runner.begin(saga, { fail }));
  await runner.handleReply({
    id: 'x',
    type: 'payment.charge.succeeded',
    version: 'v1',
    source: 't',
    time: new Date().toISOString(),
    payload: {},
    metadata: {},
  });
  await runner.stop();
  const text = await registry.metrics();
  assert.match(text, /sagas_started_total\{saga_type="order"\} 3/);
  assert.match(text, /sagas_finished_total\{saga_type="order",status="completed"\} 2/);
  assert.match(text, /sagas_finished_total\{saga_type="order",status="compensated"\} 1/);
  assert.match(text, /saga_duration_seconds_count\{saga_type="order",status="completed"\} 2/);
  assert.match(text, /saga_steps_total\{saga_type="order",step="charge",kind="action",outcome="failure"\} 1/);
  assert.match(
    text,
    /saga_steps_total\{saga_type="order",step="reserve",kind="compensation",outcome="success"\} 1/,
  );
  assert.match(text, /saga_replies_ignored_total\{reason="uncorrelated"\} 1/);
});

test('a span per step, in the trace stored with the saga', async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  try {
    const runner = new SagaRunner({
      store: new MemorySagaStore(),
      sagas: [saga],
      pollIntervalMs: 10,
      observers: [new SagaTracing()],
    });
    runner.start();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const id = await runner.begin(
      saga,
      { fail: true },
      { metadata: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } },
    );
    await runner.wait(id);
    await runner.stop();
    const spans = exporter.getFinishedSpans();
    assert.deepEqual(
      spans.map((s) => s.name),
      ['saga order.reserve', 'saga order.charge', 'saga order.reserve compensate'],
    );
    assert.ok(spans.every((s) => s.spanContext().traceId === traceId));
    assert.equal(spans[1]!.status.code, 2 /* ERROR */);
    assert.equal(spans[0]!.attributes['herald.saga.id'], id);
  } finally {
    trace.disable();
    propagation.disable();
    await provider.shutdown();
  }
});
