import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Link,
  type Span,
  type TextMapPropagator,
  type Tracer,
  TraceFlags,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { PublishMiddleware } from '../core/bus.js';
import type { ConsumerMiddleware } from '../core/consumer/context.js';
import { ConfigError } from '../core/errors.js';
import type { Observer } from '../core/observer.js';
import type { EventStore } from '../store/event-store.js';
import { fuseConsume, fusePublish, type ConsumeHooks, type PublishHooks } from './hooks.js';

/** Where spans go. A SpanExporter instance (e.g. InMemorySpanExporter in tests) is used as given. */
export type TraceExporterChoice = 'otlp' | 'console' | 'none' | SpanExporter;

export interface TracingOptions {
  /** `service.name` of the resource; `OTEL_SERVICE_NAME` wins when set. */
  readonly serviceName: string;
  /**
   * Head sampling ratio 0..1 as ParentBased(TraceIdRatio). Leave unset to honour
   * `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` (SDK default: parent-based always-on).
   */
  readonly sampleRate?: number;
  /** Default: `OTEL_TRACES_EXPORTER` (otlp, console, none) or `otlp`. */
  readonly exporter?: TraceExporterChoice;
  /** OTLP endpoint for traces; default from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  readonly otlpUrl?: string;
  /** Export each span at once (tests, console); default false: batched with a bounded queue. */
  readonly simpleProcessor?: boolean;
  /** Longest `shutdown()` waits for the exporter before giving up on unsent spans; default 5000 ms. */
  readonly shutdownTimeoutMs?: number;
  /**
   * Register this provider, the W3C propagator and an AsyncLocalStorage context manager globally
   * (each only if none is registered yet); default true. The context manager is registered
   * regardless when none exists: without it the handler could not run inside its span.
   */
  readonly registerGlobal?: boolean;
  /** Value of `messaging.system`; set from `transport.name` by `instrument(herald)`. */
  readonly messagingSystem?: string;
}

/** Key under which the consumer span is put in `ctx.state`, for handlers that want it. */
export const SPAN_STATE_KEY = 'otel.span';

/** How long a failed process span waits for the retry/dead-letter decision before it is ended anyway. */
const PENDING_SPAN_MS = 30_000;

/**
 * OpenTelemetry tracing for Herald following the messaging semantic conventions: a PRODUCER
 * `send <topic>` span per publish call whose context travels in each message's `traceparent`/
 * `tracestate` headers, and a CONSUMER `process <topic>` span per handled message, a child of
 * the producer context and linked to it.
 */
export class EventTracing {
  readonly tracer: Tracer;
  readonly provider: BasicTracerProvider;
  messagingSystem: string;
  private readonly propagator: TextMapPropagator = new W3CTraceContextPropagator();
  private readonly shutdownTimeoutMs: number;
  /** True when the sampler is our ParentBased(TraceIdRatio): unsampled parents then mean unsampled children. */
  private readonly parentBased: boolean;
  /** Failed process spans, ended when the consumer decides between retry and dead letter. */
  private readonly pending = new Map<string, { span: Span; timer: NodeJS.Timeout }>();

  constructor(options: TracingOptions) {
    if (options.sampleRate !== undefined && !(options.sampleRate >= 0 && options.sampleRate <= 1)) {
      throw new ConfigError(
        'tracing.sampleRate',
        `must be between 0 and 1, got ${String(options.sampleRate)}`,
      );
    }
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
    this.messagingSystem = options.messagingSystem ?? 'herald';
    const exporter = makeExporter(options);
    const processors: SpanProcessor[] = exporter
      ? [options.simpleProcessor ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)]
      : [];
    // Code gives the default name; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
    const resource = defaultResource()
      .merge(resourceFromAttributes({ 'service.name': options.serviceName }))
      .merge(detectResources({ detectors: [envDetector] }));
    this.parentBased = options.sampleRate !== undefined && process.env.OTEL_TRACES_SAMPLER === undefined;
    this.provider = new BasicTracerProvider({
      resource,
      spanProcessors: processors,
      ...(this.parentBased
        ? { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRate) }) }
        : {}),
    });
    this.tracer = this.provider.getTracer('herald');
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    if (options.registerGlobal !== false) {
      trace.setGlobalTracerProvider(this.provider);
      propagation.setGlobalPropagator(this.propagator);
    }
  }

  /** PRODUCER span per publish call; injects its context into every message's headers. */
  publishHooks(): PublishHooks {
    return {
      enter: (ctx) => {
        const single = ctx.messages.length === 1 ? ctx.messages[0] : undefined;
        const span = this.tracer.startSpan(`send ${ctx.topic}`, {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': this.messagingSystem,
            'messaging.destination.name': ctx.topic,
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'send',
            ...(single
              ? { 'messaging.message.id': single.id }
              : { 'messaging.batch.message_count': ctx.messages.length }),
            ...(ctx.events.length === 1 && ctx.events[0] ? { 'herald.event.type': ctx.events[0].type } : {}),
          },
        });
        const spanContext = trace.setSpan(context.active(), span);
        // Unsampled spans are propagated too: the sampled flag carries the decision downstream.
        for (const m of ctx.messages) this.propagator.inject(spanContext, m.headers, headerSetter);
        const exit = (err: unknown): void => {
          if (err !== undefined) fail(span, err);
          span.end();
        };
        // Entering a context costs an AsyncLocalStorage run; only worth it when something records.
        return span.isRecording() ? { context: spanContext, exit } : exit;
      },
    };
  }

  /**
   * CONSUMER span per handled message, a child of the producer context from the headers and linked
   * to it; the handler runs inside it. A failed span stays open until the retry/dead-letter decision
   * is known (see {@link observer}).
   */
  consumeHooks(): ConsumeHooks {
    return {
      enter: (ctx) => {
        const parent = this.propagator.extract(ROOT_CONTEXT, ctx.message.headers, headerGetter);
        const producer = trace.getSpanContext(parent);
        // Our ParentBased sampler would drop it anyway: skip building a span that records nothing.
        if (this.parentBased && producer && (producer.traceFlags & TraceFlags.SAMPLED) === 0)
          return undefined;
        const links: Link[] = producer ? [{ context: producer }] : [];
        const span = this.tracer.startSpan(
          `process ${ctx.topic}`,
          {
            kind: SpanKind.CONSUMER,
            links,
            attributes: {
              'messaging.system': this.messagingSystem,
              'messaging.destination.name': ctx.topic,
              'messaging.operation.type': 'process',
              'messaging.operation.name': 'process',
              'messaging.message.id': ctx.message.id,
              'messaging.consumer.group.name': ctx.group,
              'herald.event.type': ctx.event.type,
              'herald.handler': ctx.handler,
              'herald.delivery.attempt': ctx.attempt,
            },
          },
          parent,
        );
        ctx.state[SPAN_STATE_KEY] = span;
        const exit = (err: unknown): void => {
          if (err !== undefined) {
            fail(span, err);
            this.hold(`${ctx.group}\0${ctx.event.id}`, span);
            return;
          }
          if (ctx.skipped) span.setAttribute('herald.skipped', ctx.skipped);
          span.end();
        };
        return span.isRecording() ? { context: trace.setSpan(parent, span), exit } : exit;
      },
    };
  }

  /** Standalone publish middleware (createObservability fuses the hooks instead). */
  publishMiddleware(): PublishMiddleware {
    return fusePublish([this.publishHooks()], runInContext)!;
  }

  /** Standalone consumer middleware (createObservability fuses the hooks instead). */
  consumeMiddleware(): ConsumerMiddleware {
    return fuseConsume([this.consumeHooks()], runInContext)!;
  }

  /** Ends failed process spans with a `retry_scheduled` or `dead_lettered` span event. */
  observer(): Observer {
    return {
      onRetryScheduled: (info) => {
        const span = this.release(`${info.group}\0${info.event?.id ?? ''}`);
        span?.addEvent('retry_scheduled', {
          'herald.retry.delay_ms': info.delayMs,
          'herald.delivery.attempt': info.attempt,
        });
        span?.end();
      },
      onDeadLettered: ({ entry }) => {
        const span = this.release(`${entry.group}\0${entry.message.id}`);
        span?.addEvent('dead_lettered', {
          'herald.dead_letter.reason': entry.reason,
          'herald.delivery.attempt': entry.attempts,
        });
        span?.end();
      },
    };
  }

  /** Trace and span id of the span active for a failed message, while its fate is pending. */
  pendingSpan(group: string, eventId: string | undefined): Span | undefined {
    return this.pending.get(`${group}\0${eventId ?? ''}`)?.span;
  }

  /** Wraps an event store so each append is an INTERNAL span `append events` under the caller's context. */
  instrumentEventStore<S extends EventStore>(store: S): S {
    const append = store.append.bind(store);
    const wrapped = Object.create(store) as S;
    wrapped.append = (events, options) =>
      this.tracer.startActiveSpan(
        'append events',
        { kind: SpanKind.INTERNAL, attributes: { 'herald.event.count': events.length } },
        async (span) => {
          try {
            return await append(events, options);
          } catch (err) {
            fail(span, err);
            throw err;
          } finally {
            span.end();
          }
        },
      );
    return wrapped;
  }

  /** Ends pending spans and flushes the exporter; never waits longer than `shutdownTimeoutMs`. */
  async shutdown(): Promise<void> {
    for (const [k, { span, timer }] of this.pending) {
      clearTimeout(timer);
      span.end();
      this.pending.delete(k);
    }
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.shutdownTimeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([this.provider.shutdown().catch(() => undefined), giveUp]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Flushes spans without shutting down (tests, before a scrape of an in-memory exporter). */
  async flush(): Promise<void> {
    await this.provider.forceFlush().catch(() => undefined);
  }

  private hold(key: string, span: Span): void {
    this.release(key)?.end();
    const timer = setTimeout(() => this.release(key)?.end(), PENDING_SPAN_MS);
    timer.unref();
    this.pending.set(key, { span, timer });
  }

  private release(key: string): Span | undefined {
    const entry = this.pending.get(key);
    if (!entry) return undefined;
    clearTimeout(entry.timer);
    this.pending.delete(key);
    return entry.span;
  }
}

/** The active span's ids, or undefined outside a sampled span; for log lines. */
export function activeTraceIds(
  ctx: Context = context.active(),
): { trace_id: string; span_id: string } | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !trace.isSpanContextValid(sc)) return undefined;
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/** Runs `fn` with `ctx` active (through the global context manager). */
export function runInContext(ctx: Context, fn: () => Promise<void>): Promise<void> {
  return context.with(ctx, fn);
}

function fail(span: Span, err: unknown): void {
  const error = err instanceof Error ? err : new Error(String(err));
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

const headerSetter = {
  set(carrier: Record<string, string>, key: string, value: string): void {
    carrier[key] = value;
  },
};

const headerGetter = {
  get(carrier: Readonly<Record<string, string>>, key: string): string | undefined {
    return carrier[key];
  },
  keys(carrier: Readonly<Record<string, string>>): string[] {
    return Object.keys(carrier);
  },
};

function makeExporter(options: TracingOptions): SpanExporter | undefined {
  const choice =
    options.exporter ??
    (process.env.OTEL_TRACES_EXPORTER?.split(',')[0]?.trim() as TraceExporterChoice | undefined) ??
    'otlp';
  if (typeof choice === 'object') return choice;
  switch (choice) {
    case 'otlp':
      // Without a url the exporter reads OTEL_EXPORTER_OTLP_* itself.
      return new OTLPTraceExporter(options.otlpUrl ? { url: options.otlpUrl } : {});
    case 'console':
      return new ConsoleSpanExporter();
    case 'none':
      return undefined;
    default:
      throw new ConfigError(
        'tracing.exporter',
        `must be "otlp", "console", "none" or a SpanExporter, got ${JSON.stringify(choice)}`,
      );
  }
}
