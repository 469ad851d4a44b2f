import type { Observer } from '../core/observer.js';

const SECONDS = 60;
const SAMPLES_PER_SECOND = 256;
/** Rates are averaged over the last few whole seconds, so a bursty second does not make the line jump. */
const RATE_WINDOW_S = 5;

interface Bucket {
  second: number;
  published: number;
  handled: number;
  failed: number;
  retried: number;
  deadLettered: number;
  latencies: number[];
}

/** Rates (per second) and handling latency of one topic, or of one group on one topic. */
export interface FlowNumbers {
  readonly rateIn: number;
  readonly rateOut: number;
  readonly failRate: number;
  readonly retryRate: number;
  readonly deadLetterRate: number;
  /** Handling latency over the last minute, milliseconds; absent without samples. */
  readonly p50?: number;
  readonly p95?: number;
  readonly p99?: number;
}

/** A ring of one-second buckets per key: bounded memory however long the process runs. */
class Ring {
  private readonly buckets: Bucket[] = [];

  at(second: number): Bucket {
    const i = second % SECONDS;
    let b = this.buckets[i];
    if (!b || b.second !== second) {
      b = { second, published: 0, handled: 0, failed: 0, retried: 0, deadLettered: 0, latencies: [] };
      this.buckets[i] = b;
    }
    return b;
  }

  numbers(now: number): FlowNumbers {
    const current = Math.floor(now / 1000);
    let published = 0;
    let handled = 0;
    let failed = 0;
    let retried = 0;
    let dead = 0;
    const latencies: number[] = [];
    for (const b of this.buckets) {
      if (!b || current - b.second >= SECONDS) continue;
      latencies.push(...b.latencies);
      // The current second is still filling: rates use the whole seconds before it.
      const age = current - b.second;
      if (age < 1 || age > RATE_WINDOW_S) continue;
      published += b.published;
      handled += b.handled;
      failed += b.failed;
      retried += b.retried;
      dead += b.deadLettered;
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number): number | undefined =>
      latencies.length === 0
        ? undefined
        : Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 100) /
          100;
    const rate = (n: number): number => Math.round((n / RATE_WINDOW_S) * 10) / 10;
    const p50 = pct(0.5);
    const p95 = pct(0.95);
    const p99 = pct(0.99);
    return {
      rateIn: rate(published),
      rateOut: rate(handled),
      failRate: rate(failed),
      retryRate: rate(retried),
      deadLetterRate: rate(dead),
      ...(p50 !== undefined ? { p50 } : {}),
      ...(p95 !== undefined ? { p95 } : {}),
      ...(p99 !== undefined ? { p99 } : {}),
    };
  }
}

/**
 * Live flow numbers from Herald's observer hooks: what was published per topic, and what each group
 * handled, failed, retried and dead-lettered, with latency percentiles. Only the processes the
 * console is attached to are seen; queue depths come from the transport instead.
 */
export class LiveMetrics {
  private readonly topics = new Map<string, Ring>();
  private readonly flows = new Map<string, Ring>();
  /** Consumer groups seen per topic, for the overview's rows. */
  readonly groupsByTopic = new Map<string, Set<string>>();

  private ring(map: Map<string, Ring>, key: string): Ring {
    let r = map.get(key);
    if (!r) map.set(key, (r = new Ring()));
    return r;
  }

  private flow(topic: string, group: string): Bucket {
    let groups = this.groupsByTopic.get(topic);
    if (!groups) this.groupsByTopic.set(topic, (groups = new Set()));
    groups.add(group);
    return this.ring(this.flows, `${topic}\u0000${group}`).at(Math.floor(Date.now() / 1000));
  }

  readonly observer: Observer = {
    onPublished: ({ topic, events }) => {
      this.ring(this.topics, topic).at(Math.floor(Date.now() / 1000)).published += events.length;
    },
    onHandled: ({ topic, group, durationMs }) => {
      const b = this.flow(topic, group);
      b.handled++;
      if (b.latencies.length < SAMPLES_PER_SECOND) b.latencies.push(durationMs);
    },
    onHandlerFailed: ({ topic, group, durationMs }) => {
      const b = this.flow(topic, group);
      b.failed++;
      if (b.latencies.length < SAMPLES_PER_SECOND) b.latencies.push(durationMs);
    },
    onRetryScheduled: ({ topic, group }) => {
      this.flow(topic, group).retried++;
    },
    onDeadLettered: ({ entry }) => {
      this.flow(entry.topic, entry.group).deadLettered++;
    },
  };

  /** Numbers of one group on one topic; `rateIn` is the topic's publish rate. */
  numbers(topic: string, group: string, now = Date.now()): FlowNumbers {
    const flow = this.flows.get(`${topic}\u0000${group}`)?.numbers(now);
    const rateIn = this.topics.get(topic)?.numbers(now).rateIn ?? 0;
    return { ...(flow ?? { rateOut: 0, failRate: 0, retryRate: 0, deadLetterRate: 0 }), rateIn };
  }

  /** Topics something was published to. */
  publishedTopics(): string[] {
    return [...this.topics.keys()];
  }
}
