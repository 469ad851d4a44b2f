import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createHerald, MemoryTransport } from '../../src/index.js';
import { createObservability } from '../../src/observability/index.js';
import { LineSink } from './helpers.js';
import { unique, waitUntil } from '../support/wait.js';

describe('lifecycle logs', () => {
  test('JSON lines for published, batch, handled, retry queued, retry attempt, dead-lettered — with trace ids', async () => {
    const sink = new LineSink();
    const exporter = new InMemorySpanExporter();
    const obs = createObservability({
      serviceName: 'svc-log',
      metrics: false,
      tracing: { exporter, simpleProcessor: true, registerGlobal: false },
      logging: { destination: sink, level: 'debug', pretty: false },
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-log', transport: new MemoryTransport() }),
    );
    const group = unique('g');
    herald.subscribe({
      group,
      name: 'auditor',
      events: ['audit.entry.*'],
      retry: { maxAttempts: 2, initialDelayMs: 5, multiplier: 1, maxDelayMs: 5, jitter: false },
      handler: (e) => {
        if (e.type === 'audit.entry.bad') throw new Error('nope');
      },
    });
    await herald.start();
    await herald.publishBatch([
      { event: 'audit.entry.good', payload: { secret: 's3cret' } },
      { event: 'audit.entry.good', payload: {} },
    ]);
    const bad = await herald.publish('audit.entry.bad', {});
    await waitUntil(() => sink.find('event dead-lettered').length === 1, 'dead-letter logged');
    await waitUntil(
      () => exporter.getFinishedSpans().filter((s) => s.name === 'process audit.events').length === 4,
      'spans ended',
    );
    const spans = exporter.getFinishedSpans().filter((s) => s.name === 'process audit.events');
    await herald.stop();

    assert.ok(sink.lines.length > 0);
    for (const line of sink.lines) {
      assert.equal(line.service, 'svc-log');
      // ISO 8601, as docs/observability.md promises (pino's default would be epoch milliseconds).
      assert.match(String(line.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
    assert.equal(sink.find('batch published')[0]?.count, 2);
    assert.equal(sink.find('event published').length, 3);
    const handled = sink.find('event handled');
    assert.equal(handled.length, 2);
    for (const h of handled) {
      assert.equal(h.handler, 'auditor');
      assert.equal(typeof h.duration_ms, 'number');
      assert.match(String(h.trace_id), /^[0-9a-f]{32}$/);
      assert.equal(h.payload, undefined, 'payloads are not logged by default');
    }
    const badSpans = spans.filter((s) => s.attributes['messaging.message.id'] === bad.id);
    const queued = sink.find('retry queued')[0];
    assert.equal(queued?.event_id, bad.id);
    assert.equal(queued?.level, 40);
    assert.ok(
      badSpans.some((s) => s.spanContext().spanId === queued?.span_id),
      'retry line carries the failed span id',
    );
    const attempt = sink.find('retry attempt')[0];
    assert.equal(attempt?.attempt, 2);
    const dead = sink.find('event dead-lettered')[0];
    assert.equal(dead?.event_id, bad.id);
    assert.equal(dead?.trace_id, badSpans[0]?.spanContext().traceId);
    const failed = sink.find('handler failed');
    assert.equal(failed.length, 2);
    assert.equal((failed[0]?.err as { message?: string }).message, 'nope');
    for (const f of failed)
      assert.ok(
        badSpans.some((s) => s.spanContext().spanId === f.span_id),
        'a failure line carries the span of the failed run',
      );
    // Handled lines each carry the trace of their own message.
    const handledSpanIds = new Set(spans.map((s) => s.spanContext().spanId));
    for (const h of handled) assert.ok(handledSpanIds.has(String(h.span_id)));
  });

  test('payload logging is opt-in and redacts the listed fields', async () => {
    const sink = new LineSink();
    const obs = createObservability({
      serviceName: 'svc-redact',
      metrics: false,
      logging: {
        destination: sink,
        level: 'debug',
        pretty: false,
        includePayload: true,
        includeMetadata: true,
        redact: ['password', 'token'],
      },
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-redact', transport: new MemoryTransport() }),
    );
    await herald.publish(
      'user.account.created',
      { name: 'ada', password: 'hunter2', nested: { token: 't' } },
      { metadata: { token: 'abc', ip: '1.2.3.4' } },
    );
    const line = sink.find('event published')[0] as {
      payload: Record<string, unknown>;
      metadata: Record<string, unknown>;
    };
    assert.equal(line.payload.name, 'ada');
    assert.equal(line.payload.password, '[redacted]');
    assert.deepEqual(line.payload.nested, { token: '[redacted]' });
    assert.equal(line.metadata.token, '[redacted]');
    assert.equal(line.metadata.ip, '1.2.3.4');
    assert.equal(JSON.stringify(sink.lines).includes('hunter2'), false);
    await herald.stop();
  });

  test('per-event lines follow eventLevel; at info only batches, retries and dead letters are logged', async () => {
    const sink = new LineSink();
    const obs = createObservability({
      serviceName: 'svc-quiet',
      metrics: false,
      logging: { destination: sink, level: 'info', pretty: false },
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-quiet', transport: new MemoryTransport() }),
    );
    let n = 0;
    herald.subscribe({ group: unique('g'), events: ['q.u.iet'], handler: () => void n++ });
    await herald.start();
    await herald.publish('q.u.iet', {});
    await waitUntil(() => n === 1, 'handled');
    await herald.stop();
    assert.equal(sink.lines.length, 0);
  });

  test("per-event lines follow the logger level set at run time, not a child logger's", async () => {
    const sink = new LineSink();
    const obs = createObservability({
      serviceName: 'svc-level',
      metrics: false,
      logging: { destination: sink, level: 'info', pretty: false },
    });
    const herald = obs.instrument(
      await createHerald({ service: 'svc-level', transport: new MemoryTransport() }),
    );
    let n = 0;
    herald.subscribe({ group: unique('g'), events: ['l.e.vel'], handler: () => void n++ });
    await herald.start();
    const handle = async (): Promise<void> => {
      const before = n;
      await herald.publish('l.e.vel', {});
      await waitUntil(() => n === before + 1, 'handled');
    };
    await handle();
    assert.equal(sink.lines.length, 0);

    obs.logger.level = 'debug';
    await handle();
    await waitUntil(() => sink.find('event handled').length === 1, 'handled line at debug');
    assert.equal(sink.find('event published').length, 1);

    // A child's level is its own: lowering it leaves the service logger (and its lines) as set.
    obs.logger.child({ part: 'x' }).level = 'trace';
    obs.logger.level = 'info';
    obs.logger.child({ part: 'y' }, { level: 'debug' });
    await handle();
    assert.equal(obs.logger.listenerCount('level-change'), 1);
    await herald.stop();
    assert.equal(sink.find('event handled').length, 1);
    assert.equal(sink.find('event published').length, 1);
    // Stopping lets go of the logger: one shared by many instances does not gather their listeners.
    assert.equal(obs.logger.listenerCount('level-change'), 0);
  });

  test('logging off: silent logger, no middleware', () => {
    const obs = createObservability({ serviceName: 'svc-off', metrics: false, logging: false });
    assert.equal(obs.logger.isLevelEnabled('fatal'), false);
    assert.equal(obs.plugin.publish, undefined);
    assert.equal(obs.plugin.consume, undefined);
  });
});
