import { context, propagation, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SagaObserver, StepInfo } from '../saga/observer.js';
import { BoundedLabel } from './labels.js';

/** Buckets for saga and saga-step durations, in seconds (sagas wait on other services: up to minutes). */
export const SAGA_DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Saga metrics as a SagaObserver: `new SagaRunner({ observers: [new SagaMetrics({ registry })] })`.
 * Counts sagas started and finished per type and final status (completed, compensated, failed,
 * compensation-failed, aborted), their duration, step attempts and ignored replies.
 */
export class SagaMetrics implements SagaObserver {
  readonly started: Counter<string>;
  readonly finished: Counter<string>;
  readonly duration: Histogram<string>;
  readonly steps: Counter<string>;
  readonly stepDuration: Histogram<string>;
  readonly repliesIgnored: Counter<string>;
  private readonly type: BoundedLabel;
  private readonly step: BoundedLabel;

  constructor(options: { registry: Registry; labelCap?: number }) {
    const registers = [options.registry];
    this.type = new BoundedLabel(options.labelCap ?? 200);
    this.step = new BoundedLabel(options.labelCap ?? 200);
    this.started = new Counter({
      name: 'sagas_started_total',
      help: 'Sagas started',
      labelNames: ['saga_type'],
      registers,
    });
    this.finished = new Counter({
      name: 'sagas_finished_total',
      help: 'Sagas that reached a final or parked status, by status',
      labelNames: ['saga_type', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'saga_duration_seconds',
      help: 'Time from a saga start to its final or parked status',
      labelNames: ['saga_type', 'status'],
      buckets: SAGA_DURATION_BUCKETS,
      registers,
    });
    this.steps = new Counter({
      name: 'saga_steps_total',
      help: 'Saga step attempts (actions and compensations) by outcome',
      labelNames: ['saga_type', 'step', 'kind', 'outcome'],
      registers,
    });
    this.stepDuration = new Histogram({
      name: 'saga_step_duration_seconds',
      help: 'Duration of saga step attempts',
      labelNames: ['saga_type', 'step', 'kind'],
      buckets: SAGA_DURATION_BUCKETS,
      registers,
    });
    this.repliesIgnored = new Counter({
      name: 'saga_replies_ignored_total',
      help: 'Reply events ignored: duplicate, late (saga finished), unknown saga, or no correlation id',
      labelNames: ['reason'],
      registers,
    });
  }

  onSagaStarted(info: { sagaType: string }): void {
    this.started.inc({ saga_type: this.type.fold(info.sagaType) });
  }

  onSagaFinished(info: { sagaType: string; status: string; durationMs: number }): void {
    const labels = { saga_type: this.type.fold(info.sagaType), status: info.status };
    this.finished.inc(labels);
    this.duration.observe(labels, info.durationMs / 1000);
  }

  onStepFinished(info: StepInfo & { durationMs: number; error?: Error }): void {
    const base = {
      saga_type: this.type.fold(info.sagaType),
      step: this.step.fold(info.step),
      kind: info.kind,
    };
    this.steps.inc({ ...base, outcome: info.error ? 'failure' : 'success' });
    this.stepDuration.observe(base, info.durationMs / 1000);
  }

  onReplyIgnored(info: { reason: string }): void {
    this.repliesIgnored.inc({ reason: info.reason });
  }
}

/** Metadata for `runner.begin(saga, input, { metadata: sagaTraceMetadata() })`: the active trace context. */
export function sagaTraceMetadata(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

const MAX_OPEN_SPANS = 10_000;

/**
 * A span per saga step attempt (`saga <type>.<step>` or `saga <type>.<step> compensate`), child of
 * the trace whose context was stored in the saga's metadata at `begin` (see {@link sagaTraceMetadata}),
 * so every step, whichever instance ran it, lands in the trace that started the saga.
 */
export class SagaTracing implements SagaObserver {
  private readonly tracer = trace.getTracer('herald-saga');
  private readonly open = new Map<string, Span>();

  onStepStarted(info: StepInfo): void {
    const parent = propagation.extract(context.active(), info.metadata);
    const span = this.tracer.startSpan(
      `saga ${info.sagaType}.${info.step}${info.kind === 'compensation' ? ' compensate' : ''}`,
      {
        attributes: {
          'herald.saga.id': info.sagaId,
          'herald.saga.type': info.sagaType,
          'herald.saga.step': info.step,
          'herald.saga.step_kind': info.kind,
          'herald.saga.attempt': info.attempt,
        },
      },
      parent,
    );
    if (this.open.size >= MAX_OPEN_SPANS) {
      // A command step may finish in another process: never let such spans pile up here.
      const [oldest] = this.open.keys();
      this.open.get(oldest!)!.end();
      this.open.delete(oldest!);
    }
    this.open.set(key(info), span);
  }

  onStepFinished(info: StepInfo & { error?: Error }): void {
    const span = this.open.get(key(info));
    if (!span) return;
    this.open.delete(key(info));
    if (info.error) {
      span.recordException(info.error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: info.error.message });
    }
    span.end();
  }
}

function key(info: StepInfo): string {
  return `${info.sagaId}\0${info.step}\0${info.kind}\0${info.attempt}`;
}
