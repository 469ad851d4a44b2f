import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { BasicTracerProvider, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { PublishContext, PublishMiddleware } from '../core/bus.js';
import type { ConsumerMiddleware } from '../core/consumer/context.js';
import { ConfigError } from '../core/errors.js';
import type { Observer } from '../core/observer.js';
import type { EventStore } from '../store/event-store.js';
import { fuseConsume, fusePublish, type ConsumeHooks, type PublishHooks } from './hooks.js';
import { otlpExporter, tracingSdk } from './otel-sdk.js';
import { PooledIdGenerator, TraceIdRatioSampler } from './sampling.js';

/**
 * An OpenTelemetry SDK `SpanExporter` (e.g. `InMemorySpanExporter` in tests), written structurally so
 * Herald's typings compile without the SDK installed; any SDK exporter fits as is.
 */
export interface SpanExporterLike {
  export(spans: unknown[], resultCallback: (result: { code: number; error?: Error }) => void): void;
  shutdown(): Promise<void>;
  forceFlush?(): Promise<void>;
}

/** The tracer provider Herald creates (an SDK `BasicTracerProvider`), as far as callers need it. */
export interface HeraldTracerProvider extends TracerProvider {
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Where spans go. A SpanExporter instance (e.g. InMemorySpanExporter in tests) is used as given.
 * `otlp` needs the optional peer `@opentelemetry/exporter-trace-otlp-proto`; every choice needs the
 * SDK packages (see docs/observability.md).
 */
export type TraceExporterChoice = 'otlp' | 'console' | 'none' | SpanExporterLike;

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
   * Register this provider and the W3C propagator globally (each only if none is registered yet);
   * default true. The context manager is governed by {@link contextManager}.
   */
  readonly registerGlobal?: boolean;
  /**
   * Install an AsyncLocalStorage context manager when none is registered yet, so handlers run inside
   * their span and what they publish or call continues the trace; default true. Pass false when the
   * app registers its own (the OpenTelemetry Node SDK does), or to trade in-process propagation for
   * speed on Node 20, where an active AsyncLocalStorage makes every promise in the process dearer
   * (see docs/benchmarks.md). Trace context still travels between services in message headers.
   */
  readonly contextManager?: boolean;
  /** Value of `messaging.system`; set from `transport.name` by `instrument(herald)`. */
  readonly messagingSystem?: string;
}

/** Key under which the consumer span is put in `ctx.state`, for handlers that want it. */
export const SPAN_STATE_KEY = 'otel.span';

interface PendingSpan {
  readonly attempt: number;
  readonly span: Span;
  readonly timer: NodeJS.Timeout;
}

/** Topics whose span names are kept; past this (unbounded topic names) names are made per span. */
const MAX_SPAN_NAMES = 1000;

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
  readonly provider: HeraldTracerProvider;
  messagingSystem: string;
  private readonly propagator: TextMapPropagator;
  private readonly isTracingSuppressed: (context: Context) => boolean;
  private readonly shutdownTimeoutMs: number;
  /** True when the sampler is our ParentBased(TraceIdRatio): unsampled parents then mean unsampled children. */
  private readonly parentBased: boolean;
  /** Our root sampler when {@link parentBased}; publish decides roots with it before starting a span. */
  private readonly rootSampler: TraceIdRatioSampler | undefined;
  private readonly ids = new PooledIdGenerator();
  /** Failed process spans, ended when the consumer decides between retry and dead letter. */
  /**
   * Failed process spans waiting for their retry/dead-letter decision, per group and event id, in
   * attempt order. Keyed by attempt too: a retry can come due and fail again before the decision of
   * the attempt before it is reported (a transport that commits the nack and the next fetch together).
   */
  private readonly pending = new Map<string, PendingSpan[]>();
  private readonly sendNames = new Map<string, string>();
  private readonly processNames = new Map<string, string>();

  constructor(options: TracingOptions) {
    if (options.sampleRate !== undefined && !(options.sampleRate >= 0 && options.sampleRate <= 1)) {
      throw new ConfigError(
        'tracing.sampleRate',
        `must be between 0 and 1, got ${String(options.sampleRate)}`,
      );
    }
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
    this.messagingSystem = options.messagingSystem ?? 'herald';
    const { base, core, resources, asyncHooks } = tracingSdk();
    this.propagator = new core.W3CTraceContextPropagator();
    this.isTracingSuppressed = core.isTracingSuppressed;
    const exporter = makeExporter(options, base);
    const processors: SpanProcessor[] = exporter
      ? [
          options.simpleProcessor
            ? new base.SimpleSpanProcessor(exporter)
            : new base.BatchSpanProcessor(exporter),
        ]
      : [];
    // Code gives the default name; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it.
    const resource = resources
      .defaultResource()
      .merge(resources.resourceFromAttributes({ 'service.name': options.serviceName }))
      .merge(resources.detectResources({ detectors: [resources.envDetector] }));
    this.parentBased = options.sampleRate !== undefined && process.env.OTEL_TRACES_SAMPLER === undefined;
    this.rootSampler = this.parentBased ? new TraceIdRatioSampler(options.sampleRate!) : undefined;
    const provider: BasicTracerProvider = new base.BasicTracerProvider({
      resource,
      spanProcessors: processors,
      idGenerator: this.ids,
      ...(this.rootSampler ? { sampler: new base.ParentBasedSampler({ root: this.rootSampler }) } : {}),
    });
    this.provider = provider;
    this.tracer = provider.getTracer('herald');
    if (options.contextManager !== false)
      context.setGlobalContextManager(new asyncHooks.AsyncLocalStorageContextManager().enable());
    if (options.registerGlobal !== false) {
      trace.setGlobalTracerProvider(this.provider);
      propagation.setGlobalPropagator(this.propagator);
    }
  }

  /**
   * @internal Parts of the fused observability middleware; use {@link publishMiddleware}.
   *
   * PRODUCER span per publish call; injects its context into every message's headers.
   */
  publishHooks(): PublishHooks {
    return {
      enter: (ctx) => {
        const parent = context.active();
        if (
          this.rootSampler &&
          trace.getSpanContext(parent) === undefined &&
          !this.isTracingSuppressed(parent)
        ) {
          // A new trace under our ratio sampler: decide on a fresh trace id before asking the SDK for
          // a span, so the publishes that are dropped cost two ids and a string, not a span.
          const ids = this.ids.generateIdPair();
          const traceId = ids.slice(0, 32);
          if (!this.rootSampler.keeps(traceId)) {
            setTraceparent(ctx, traceId, ids.slice(32), 0);
            return undefined;
          }
          this.ids.prime(traceId);
        }
        const single = ctx.messages.length === 1 ? ctx.messages[0] : undefined;
        const attributes = (): Attributes => {
          // Assigned rather than spread in: on Node 20 spreads make a hidden class per object.
          const a: Attributes = {
            'messaging.system': this.messagingSystem,
            'messaging.destination.name': ctx.topic,
            'messaging.operation.type': 'send',
            'messaging.operation.name': 'send',
          };
          if (single) a['messaging.message.id'] = single.id;
          else a['messaging.batch.message_count'] = ctx.messages.length;
          if (ctx.events.length === 1 && ctx.events[0]) a['herald.event.type'] = ctx.events[0].type;
          return a;
        };
        const name = this.spanName('send', ctx.topic);
        // Our own sampler ignores attributes, so they are built only for spans that record (a tenth
        // at the default ratio); a sampler from OTEL_TRACES_SAMPLER gets them up front.
        const span = this.parentBased
          ? this.tracer.startSpan(name, { kind: SpanKind.PRODUCER }, parent)
          : this.tracer.startSpan(name, { kind: SpanKind.PRODUCER, attributes: attributes() }, parent);
        if (!span.isRecording()) {
          // The sampled flag still travels, so consumers and downstream services agree not to record.
          const sc = span.spanContext();
          if (sc.traceState === undefined) {
            setTraceparent(ctx, sc.traceId, sc.spanId, sc.traceFlags);
          } else this.injectAll(ctx, trace.setSpan(parent, span));
          return undefined;
        }
        if (this.parentBased) span.setAttributes(attributes());
        const spanContext = trace.setSpan(parent, span);
        const sc = span.spanContext();
        if (sc.traceState === undefined) setTraceparent(ctx, sc.traceId, sc.spanId, sc.traceFlags);
        else this.injectAll(ctx, spanContext);
        return {
          context: spanContext,
          exit: (err: unknown): void => {
            if (err !== undefined) fail(span, err);
            span.end();
          },
        };
      },
    };
  }

  /**
   * CONSUMER span per handled message, a child of the producer context from the headers and linked
   * to it; the handler runs inside it. A failed span stays open until the retry/dead-letter decision
   * is known (see {@link observer}).
   *
   * @internal Parts of the fused observability middleware; use the consume middleware.
   */
  consumeHooks(): ConsumeHooks {
    return {
      enter: (ctx) => {
        const headers = ctx.message.headers;
        // With our ParentBased sampler an unsampled producer means an unsampled consumer: read the
        // flag straight from the header and skip parsing it (most messages at a low ratio).
        if (this.parentBased && isUnsampledTraceparent(headers.traceparent)) return undefined;
        const remote = headers.tracestate === undefined ? parseTraceparent(headers.traceparent) : undefined;
        const parent = remote
          ? trace.setSpanContext(ROOT_CONTEXT, remote)
          : this.propagator.extract(ROOT_CONTEXT, headers, headerGetter);
        const producer = remote ?? trace.getSpanContext(parent);
        const links: Link[] = producer ? [{ context: producer }] : [];
        const attributes: Attributes = {
          'messaging.system': this.messagingSystem,
          'messaging.destination.name': ctx.topic,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.message.id': ctx.message.id,
          'messaging.consumer.group.name': ctx.group,
          'herald.event.type': ctx.event.type,
          'herald.handler': ctx.handler,
          'herald.delivery.attempt': ctx.attempt,
        };
        const name = this.spanName('process', ctx.topic);
        // As for publish: attributes given in the options are sanitised twice by the SDK's tracer
        // (before and after sampling) and then checked once more as the span sets them; our sampler
        // does not read them, so they are set once on the started span.
        const span = this.parentBased
          ? this.tracer.startSpan(name, { kind: SpanKind.CONSUMER, links }, parent)
          : this.tracer.startSpan(name, { kind: SpanKind.CONSUMER, links, attributes }, parent);
        if (!span.isRecording()) return undefined;
        if (this.parentBased) span.setAttributes(attributes);
        ctx.state[SPAN_STATE_KEY] = span;
        return {
          // The parent context holds nothing but the remote span context, which this replaces: one
          // context copy less than setting the span on the parent.
          context: trace.setSpan(ROOT_CONTEXT, span),
          exit: (err: unknown): void => {
            if (err !== undefined) {
              fail(span, err);
              this.hold(`${ctx.group}\0${ctx.event.id}`, ctx.attempt, span);
              return;
            }
            if (ctx.skipped) span.setAttribute('herald.skipped', ctx.skipped);
            span.end();
          },
        };
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
        const span = this.release(`${info.group}\0${info.event?.id ?? ''}`, info.attempt);
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

  /**
   * The span of a failed message while its fate is pending: of the given attempt, or the latest
   * failed attempt when none is given (a dead letter is the decision of the latest).
   */
  pendingSpan(group: string, eventId: string | undefined, attempt?: number): Span | undefined {
    const list = this.pending.get(`${group}\0${eventId ?? ''}`);
    if (!list) return undefined;
    return (attempt === undefined ? list[list.length - 1] : list.find((p) => p.attempt === attempt))?.span;
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
    for (const [k, list] of this.pending) {
      for (const { span, timer } of list) {
        clearTimeout(timer);
        span.end();
      }
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

  /** `send <topic>` / `process <topic>`, made once per topic rather than concatenated per span. */
  private spanName(operation: 'send' | 'process', topic: string): string {
    const names = operation === 'send' ? this.sendNames : this.processNames;
    let name = names.get(topic);
    if (name === undefined) {
      name = `${operation} ${topic}`;
      if (names.size < MAX_SPAN_NAMES) names.set(topic, name);
    }
    return name;
  }

  /** One propagator run per publish call; every message of the call carries the same context. */
  private injectAll(ctx: PublishContext, spanContext: Context): void {
    const carrier: Record<string, string> = {};
    this.propagator.inject(spanContext, carrier, headerSetter);
    for (const m of ctx.messages) Object.assign(m.headers, carrier);
  }

  private hold(key: string, attempt: number, span: Span): void {
    // The same attempt again (redelivered after a crash or a release): its decision never came.
    this.release(key, attempt)?.end();
    const timer = setTimeout(() => this.release(key, attempt)?.end(), PENDING_SPAN_MS);
    timer.unref();
    const list = this.pending.get(key);
    if (list) list.push({ attempt, span, timer });
    else this.pending.set(key, [{ attempt, span, timer }]);
  }

  /** Takes the pending span of `attempt` (the latest one when undefined) out of the map. */
  private release(key: string, attempt?: number): Span | undefined {
    const list = this.pending.get(key);
    if (!list) return undefined;
    const i = attempt === undefined ? list.length - 1 : list.findIndex((p) => p.attempt === attempt);
    if (i < 0) return undefined;
    const [entry] = list.splice(i, 1);
    if (list.length === 0) this.pending.delete(key);
    clearTimeout(entry!.timer);
    return entry!.span;
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

/**
 * Writes a W3C version-00 `traceparent` into every message of the call by hand: for contexts
 * without tracestate, the propagator's validation and context copy cost more than the span.
 */
function setTraceparent(ctx: PublishContext, traceId: string, spanId: string, flags: number): void {
  const hex = flags === 0 ? '00' : flags === 1 ? '01' : (flags & 0xff).toString(16).padStart(2, '0');
  const traceparent = `00-${traceId}-${spanId}-${hex}`;
  for (const m of ctx.messages) m.headers.traceparent = traceparent;
}

/**
 * True for a W3C version-00 `traceparent` whose sampled flag is clear
 * (`00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`; the flag is bit 0 of the last digit).
 * Anything else (absent, another version, malformed) is left to the propagator.
 */
export function isUnsampledTraceparent(value: string | undefined): boolean {
  if (value === undefined || value.length !== 55 || !value.startsWith('00-')) return false;
  const flag = value.charCodeAt(54);
  // Even digits ('0', '2', ..., 'a', 'c', 'e') have bit 0 clear; '0'-'9' are 48-57, 'a'-'f' 97-102.
  return (
    (flag >= 48 && flag <= 57 && (flag - 48) % 2 === 0) ||
    (flag >= 97 && flag <= 102 && (flag - 97) % 2 === 0)
  );
}

/**
 * The remote span context of a well-formed W3C version-00 `traceparent` (the form every current
 * producer writes), or undefined for anything else, which is then left to the propagator. By hand
 * because the propagator's regular expression and id validation cost more than the span itself.
 */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined || value.length !== 55 || !value.startsWith('00-')) return undefined;
  if (value.charCodeAt(35) !== 0x2d || value.charCodeAt(52) !== 0x2d) return undefined;
  let traceNonZero = false;
  let spanNonZero = false;
  for (let i = 3; i < 55; i++) {
    if (i === 35 || i === 52) continue;
    const c = value.charCodeAt(i);
    // Lower-case hex only, as the specification requires.
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return undefined;
    if (c !== 0x30) {
      if (i < 35) traceNonZero = true;
      else if (i < 52) spanNonZero = true;
    }
  }
  if (!traceNonZero || !spanNonZero) return undefined;
  return {
    traceId: value.slice(3, 35),
    spanId: value.slice(36, 52),
    traceFlags: Number.parseInt(value.slice(53), 16),
    isRemote: true,
  };
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

function makeExporter(
  options: TracingOptions,
  base: ReturnType<typeof tracingSdk>['base'],
): SpanExporter | undefined {
  const choice =
    options.exporter ??
    (process.env.OTEL_TRACES_EXPORTER?.split(',')[0]?.trim() as TraceExporterChoice | undefined) ??
    'otlp';
  // An exporter made by the caller's SDK is an SDK SpanExporter; the structural type only keeps the
  // SDK's types out of Herald's public typings.
  if (typeof choice === 'object') return choice as SpanExporter;
  switch (choice) {
    case 'otlp': {
      // Without a url the exporter reads OTEL_EXPORTER_OTLP_* itself.
      const { OTLPTraceExporter } = otlpExporter();
      return new OTLPTraceExporter(options.otlpUrl ? { url: options.otlpUrl } : {});
    }
    case 'console':
      return new base.ConsoleSpanExporter();
    case 'none':
      return undefined;
    default:
      throw new ConfigError(
        'tracing.exporter',
        `must be "otlp", "console", "none" or a SpanExporter, got ${JSON.stringify(choice)}`,
      );
  }
}
