import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Herald } from '../core/herald.js';
import type { ConsumerMiddleware } from '../core/consumer/context.js';
import { REPLAY_GROUP_HEADER } from '../core/consumer/consumer.js';
import type { Observer } from '../core/observer.js';
import type { EventStore } from '../store/event-store.js';
import { fuseConsume, type ConsumeHooks } from './hooks.js';
import { BoundedLabel } from './labels.js';

/** Buckets for event publish/handle durations, in seconds. */
export const EVENT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface EventMetricsOptions {
  readonly registry: Registry;
  /** Distinct values per label before new ones fold into `other`; default 200. */
  readonly labelCap?: number;
  /** How long transport stats and DLQ counts are reused between scrapes; default 1000 ms. */
  readonly statsCacheMs?: number;
}

type Labels = Record<string, string>;

/**
 * The event metrics of the seed (events_published_total, events_handled_total, ...), fed by a
 * Herald observer and a consumer middleware; queue gauges are read from the transport and the DLQ
 * on scrape.
 */
export class EventMetrics {
  readonly registry: Registry;
  private readonly eventType: BoundedLabel;
  private readonly handler: BoundedLabel;
  private readonly topic: BoundedLabel;
  private readonly group: BoundedLabel;
  private readonly source: BoundedLabel;
  private readonly heralds = new Set<Herald>();
  private readonly statsCacheMs: number;
  private statsCache: { at: number; value: Promise<QueueSnapshot> } | undefined;

  readonly published: Counter<string>;
  readonly publishDuration: Histogram<string>;
  readonly publishErrors: Counter<string>;
  readonly handled: Counter<string>;
  readonly handlingDuration: Histogram<string>;
  readonly handlingErrors: Counter<string>;
  readonly retryQueued: Counter<string>;
  readonly retried: Counter<string>;
  readonly retryFailed: Counter<string>;
  readonly deadLettered: Counter<string>;
  readonly reprocessed: Counter<string>;
  readonly stored: Counter<string>;
  readonly storageDuration: Histogram<string>;
  readonly storageErrors: Counter<string>;
  readonly activeHandlers: Gauge<string>;

  constructor(options: EventMetricsOptions) {
    const registers = [options.registry];
    this.registry = options.registry;
    const cap = options.labelCap ?? 200;
    this.eventType = new BoundedLabel(cap);
    this.handler = new BoundedLabel(cap);
    this.topic = new BoundedLabel(cap);
    this.group = new BoundedLabel(cap);
    this.source = new BoundedLabel(cap);
    this.statsCacheMs = options.statsCacheMs ?? 1000;
    const buckets = EVENT_DURATION_BUCKETS;
    this.published = new Counter({
      name: 'events_published_total',
      help: 'Events published',
      labelNames: ['event_type', 'source', 'topic'],
      registers,
    });
    this.publishDuration = new Histogram({
      name: 'events_published_duration_seconds',
      help: 'Time to hand one publish call (one topic, one or more events) to the transport',
      labelNames: ['topic'],
      buckets,
      registers,
    });
    this.publishErrors = new Counter({
      name: 'events_publish_errors_total',
      help: 'Events whose publish failed',
      labelNames: ['event_type', 'topic'],
      registers,
    });
    this.handled = new Counter({
      name: 'events_handled_total',
      help: 'Handler runs by outcome (success, error, skipped)',
      labelNames: ['event_type', 'handler', 'group', 'status'],
      registers,
    });
    this.handlingDuration = new Histogram({
      name: 'events_handling_duration_seconds',
      help: 'Handler run time, successful or not',
      labelNames: ['event_type', 'handler', 'group'],
      buckets,
      registers,
    });
    this.handlingErrors = new Counter({
      name: 'events_handling_errors_total',
      help: 'Handler runs that failed',
      labelNames: ['event_type', 'handler', 'group'],
      registers,
    });
    this.retryQueued = new Counter({
      name: 'events_retry_queued_total',
      help: 'Failed messages scheduled for a delayed retry',
      labelNames: ['event_type', 'handler', 'group'],
      registers,
    });
    this.retried = new Counter({
      name: 'events_retried_total',
      help: 'Handler runs that were retries (attempt > 1)',
      labelNames: ['event_type', 'handler', 'group'],
      registers,
    });
    this.retryFailed = new Counter({
      name: 'events_retry_failed_total',
      help: 'Retries (attempt > 1) that failed again',
      labelNames: ['event_type', 'handler', 'group'],
      registers,
    });
    this.deadLettered = new Counter({
      name: 'events_dead_lettered_total',
      help: 'Messages moved to the dead-letter queue',
      labelNames: ['event_type', 'handler', 'group', 'reason'],
      registers,
    });
    this.reprocessed = new Counter({
      name: 'events_reprocessed_total',
      help: 'Replayed dead letters handled successfully',
      labelNames: ['event_type', 'handler', 'group'],
      registers,
    });
    this.stored = new Counter({
      name: 'events_stored_total',
      help: 'Events appended to the event store',
      labelNames: ['event_type'],
      registers,
    });
    this.storageDuration = new Histogram({
      name: 'event_storage_duration_seconds',
      help: 'Event store append time',
      buckets,
      registers,
    });
    this.storageErrors = new Counter({
      name: 'event_storage_errors_total',
      help: 'Event store appends that failed',
      registers,
    });
    this.activeHandlers = new Gauge({
      name: 'handlers_active',
      help: 'Handlers running right now (the seed called it handler_active_count; a _count suffix on a gauge breaks the naming rules)',
      labelNames: ['handler', 'group'],
      registers,
    });

    const snapshot = (): Promise<QueueSnapshot> => this.snapshot();
    new Gauge({
      name: 'events_retry_queue_size',
      help: 'Messages waiting for a delayed retry (where the transport can tell)',
      labelNames: ['topic', 'group'],
      registers,
      async collect() {
        this.reset();
        for (const s of (await snapshot()).groups) this.set({ topic: s.topic, group: s.group }, s.delayed);
      },
    });
    new Gauge({
      name: 'events_consumer_lag',
      help: 'Messages published but not yet delivered to the group (where the transport can tell)',
      labelNames: ['topic', 'group'],
      registers,
      async collect() {
        this.reset();
        for (const s of (await snapshot()).groups) this.set({ topic: s.topic, group: s.group }, s.lag);
      },
    });
    new Gauge({
      name: 'events_consumer_in_flight',
      help: 'Messages delivered to the group and not yet settled (where the transport can tell)',
      labelNames: ['topic', 'group'],
      registers,
      async collect() {
        this.reset();
        for (const s of (await snapshot()).groups) this.set({ topic: s.topic, group: s.group }, s.inFlight);
      },
    });
    new Gauge({
      name: 'events_dead_letter_queue_size',
      help: 'Entries in the dead-letter queue',
      registers,
      async collect() {
        const { deadLetters } = await snapshot();
        if (deadLetters === undefined) this.reset();
        else this.set(deadLetters);
      },
    });
  }

  /** Reads queue gauges from this Herald's transport and DLQ on scrape. */
  watch(herald: Herald): void {
    this.heralds.add(herald);
    this.statsCache = undefined;
  }

  /** Lifecycle observer that feeds the counters and histograms. */
  observer(): Observer {
    const children = new ChildCache();
    // One bundle of label children per (type, handler, group): the hot path is one Map lookup.
    const bundles = new Map<string, HandlerSeries>();
    const series = (eventType: string | undefined, handler: string, group: string): HandlerSeries => {
      const k = `${eventType}\0${handler}\0${group}`;
      let b = bundles.get(k);
      if (!b) {
        const labels = this.handlerLabels(eventType, handler, group);
        b = {
          labels,
          success: this.handled.labels({ ...labels, status: 'success' }),
          error: this.handled.labels({ ...labels, status: 'error' }),
          duration: this.handlingDuration.labels(labels),
        };
        if (bundles.size < 10_000) bundles.set(k, b);
      }
      return b;
    };
    return {
      onPublished: ({ topic, events, durationMs }) => {
        children
          .get(this.publishDuration, topic, () => ({ topic: this.topic.fold(topic) }))
          .observe(durationMs / 1000);
        for (const e of events) {
          children
            .get(this.published, `${e.type}\0${e.source}\0${topic}`, () => ({
              event_type: this.eventType.fold(e.type),
              source: this.source.fold(e.source),
              topic: this.topic.fold(topic),
            }))
            .inc();
        }
      },
      onPublishFailed: ({ topic, events }) => {
        for (const e of events)
          this.publishErrors.inc({ event_type: this.eventType.fold(e.type), topic: this.topic.fold(topic) });
      },
      onHandled: (info) => {
        const b = series(info.event?.type, info.handler, info.group);
        b.success.inc();
        b.duration.observe(info.durationMs / 1000);
      },
      onHandlerFailed: (info) => {
        const b = series(info.event?.type, info.handler, info.group);
        b.error.inc();
        b.duration.observe(info.durationMs / 1000);
        this.handlingErrors.inc(b.labels);
        if (info.attempt > 1) this.retryFailed.inc(b.labels);
      },
      onHandlingStarted: (info) => {
        if (info.attempt > 1) this.retried.inc(series(info.event?.type, info.handler, info.group).labels);
      },
      onSkipped: (info) => {
        if (info.reason === 'duplicate')
          this.handled.inc({
            ...series(info.event?.type, info.handler, info.group).labels,
            status: 'skipped',
          });
      },
      onRetryScheduled: (info) => {
        this.retryQueued.inc(series(info.event?.type, info.handler, info.group).labels);
      },
      onDeadLettered: ({ entry }) => {
        this.deadLettered.inc({
          ...this.handlerLabels(entry.eventType, entry.handler, entry.group),
          reason: entry.reason,
        });
        this.statsCache = undefined;
      },
    };
  }

  /** Counts running handlers and successful replays of dead letters. */
  consumeHooks(): ConsumeHooks {
    const children = new ChildCache();
    return {
      enter: (ctx) => {
        const gauge = children.get(this.activeHandlers, `${ctx.handler}\0${ctx.group}`, () => ({
          handler: this.handler.fold(ctx.handler),
          group: this.group.fold(ctx.group),
        }));
        gauge.inc();
        return (err) => {
          gauge.dec();
          if (err === undefined && ctx.message.headers[REPLAY_GROUP_HEADER] === ctx.group)
            this.reprocessed.inc(this.handlerLabels(ctx.event.type, ctx.handler, ctx.group));
        };
      },
    };
  }

  /** Standalone consumer middleware over {@link consumeHooks}. */
  middleware(): ConsumerMiddleware {
    return fuseConsume([this.consumeHooks()], (_c, fn) => fn())!;
  }

  /** Wraps an event store so appends are counted and timed. */
  instrumentEventStore<S extends EventStore>(store: S): S {
    const append = store.append.bind(store);
    const wrapped = Object.create(store) as S;
    wrapped.append = async (events, options) => {
      const end = this.storageDuration.startTimer();
      try {
        const result = await append(events, options);
        end();
        for (const e of events) this.stored.inc({ event_type: this.eventType.fold(e.type) });
        return result;
      } catch (err) {
        end();
        this.storageErrors.inc();
        throw err;
      }
    };
    return wrapped;
  }

  private handlerLabels(eventType: string | undefined, handler: string, group: string): Labels {
    return {
      event_type: this.eventType.fold(eventType),
      handler: this.handler.fold(handler),
      group: this.group.fold(group),
    };
  }

  private snapshot(): Promise<QueueSnapshot> {
    const now = Date.now();
    if (this.statsCache && now - this.statsCache.at < this.statsCacheMs) return this.statsCache.value;
    const value = readQueues([...this.heralds]);
    this.statsCache = { at: now, value };
    return value;
  }
}

interface QueueSnapshot {
  readonly groups: { topic: string; group: string; lag: number; inFlight: number; delayed: number }[];
  readonly deadLetters: number | undefined;
}

/** One stats call per (topic, group) a consumer reads; failures leave that series out rather than failing the scrape. */
async function readQueues(heralds: readonly Herald[]): Promise<QueueSnapshot> {
  const groups: QueueSnapshot['groups'] = [];
  let deadLetters: number | undefined;
  await Promise.all(
    heralds.map(async (h) => {
      const stats = h.transport.stats?.bind(h.transport);
      const pairs = new Map<string, { topic: string; group: string }>();
      for (const c of h.subscriptions)
        for (const topic of c.topics) pairs.set(`${topic}\0${c.group}`, { topic, group: c.group });
      const [count] = await Promise.all([
        h.deadLetters.count().catch(() => undefined),
        ...(stats
          ? [...pairs.values()].map(async ({ topic, group }) => {
              const s = await stats(topic, group).catch(() => undefined);
              if (s) groups.push({ topic, group, ...s });
            })
          : []),
      ]);
      if (typeof count === 'number') deadLetters = (deadLetters ?? 0) + count;
    }),
  );
  return { groups, deadLetters };
}

interface HandlerSeries {
  readonly labels: Labels;
  readonly success: { inc(): void };
  readonly error: { inc(): void };
  readonly duration: { observe(v: number): void };
}

interface LabelledMetric<C> {
  labels(labels: Labels): C;
}

/** prom-client hashes the label object on every call; caching the children keeps the hot path to one Map lookup. */
class ChildCache {
  private readonly map = new Map<unknown, Map<string, unknown>>();

  get<C>(metric: LabelledMetric<C>, k: string, labels: Labels | (() => Labels)): C {
    let byKey = this.map.get(metric);
    if (!byKey) this.map.set(metric, (byKey = new Map()));
    let child = byKey.get(k) as C | undefined;
    if (child === undefined) {
      child = metric.labels(typeof labels === 'function' ? labels() : labels);
      // Bounded: label values fold past their cap, so keys beyond it only repeat `other` series.
      if (byKey.size < 10_000) byKey.set(k, child);
    }
    return child;
  }
}
