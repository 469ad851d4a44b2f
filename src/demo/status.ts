import type { Observer } from '../core/observer.js';

/** Per consumer group: every event routed to its topics must end up in exactly one of these. */
export interface GroupCounts {
  readonly group: string;
  readonly topics: readonly string[];
  /** Events of this run published to the group's topics. */
  routed: number;
  handled: number;
  /** Acked without running a handler: a type on the topic the group does not handle. */
  skipped: number;
  deadLettered: number;
  /** Redeliveries of an event this group had already settled (at-least-once at work). */
  duplicates: number;
}

export interface HandlerCounts {
  started: number;
  handled: number;
  failed: number;
  retries: number;
  deadLettered: number;
  skipped: number;
}

/** A point-in-time copy of the counters, for the status line, `/status` and the summary. */
export interface StatusSnapshot {
  readonly runId: string;
  readonly uptimeS: number;
  readonly published: number;
  readonly publishedByType: Record<string, number>;
  readonly publishFailed: number;
  readonly handled: number;
  /** Messages waiting in a retry queue right now. */
  readonly retrying: number;
  /** Retries scheduled so far. */
  readonly retries: number;
  readonly deadLettered: number;
  readonly deadLetteredByReason: Record<string, number>;
  /** Events still expected by some group (published, not yet handled, skipped or dead-lettered). */
  readonly outstanding: number;
  readonly groups: readonly GroupCounts[];
  readonly handlers: Record<string, HandlerCounts>;
}

/**
 * Counts what happens to every event of one demo run, from the Observer hooks of every service.
 * Each published event is registered with the groups whose topics it is routed to; each group then
 * settles it exactly once (handled, skipped or dead-lettered). Memory stays bounded by the events
 * still outstanding, not by how long the demo runs.
 */
export class DemoTally {
  readonly startedAt = Date.now();
  private readonly groups = new Map<string, GroupCounts>();
  private readonly groupsByTopic = new Map<string, GroupCounts[]>();
  /** Event id → groups that have not settled it yet. */
  private readonly expected = new Map<string, Set<string>>();
  private readonly retryWaiting = new Set<string>();
  private readonly handlers = new Map<string, HandlerCounts>();
  private readonly byType = new Map<string, number>();
  private readonly byReason = new Map<string, number>();
  private published = 0;
  private publishFailed = 0;
  private retries = 0;

  constructor(readonly runId: string) {}

  /** Declares a consumer group and the topics it reads (call before publishing). */
  addGroup(group: string, topics: readonly string[]): void {
    if (this.groups.has(group)) return;
    const counts: GroupCounts = {
      group,
      topics,
      routed: 0,
      handled: 0,
      skipped: 0,
      deadLettered: 0,
      duplicates: 0,
    };
    this.groups.set(group, counts);
    for (const t of topics) {
      let list = this.groupsByTopic.get(t);
      if (!list) this.groupsByTopic.set(t, (list = []));
      list.push(counts);
    }
  }

  /** Call just before publishing: delivery can race the publish call's return. */
  expect(id: string, topic: string): void {
    const groups = this.groupsByTopic.get(topic) ?? [];
    this.expected.set(id, new Set(groups.map((g) => g.group)));
  }

  /** The publish succeeded: now the events count as routed to their groups. */
  confirmPublished(events: readonly { id: string; type: string; topic: string }[]): void {
    for (const e of events) {
      this.published++;
      this.byType.set(e.type, (this.byType.get(e.type) ?? 0) + 1);
      for (const g of this.groupsByTopic.get(e.topic) ?? []) g.routed++;
    }
  }

  /** The publish failed: the events were never sent (transports publish all-or-error). */
  abandoned(ids: readonly string[]): void {
    for (const id of ids) this.expected.delete(id);
    this.publishFailed += ids.length;
  }

  /** The observer every demo service registers with `herald.observe`. */
  readonly observer: Observer = {
    onHandlingStarted: (info) => {
      this.handler(info.handler).started++;
      if (info.event) this.retryWaiting.delete(`${info.group}:${info.event.id}`);
    },
    onHandled: (info) => {
      this.handler(info.handler).handled++;
      if (info.event) this.settle(info.group, info.event.id, 'handled');
    },
    onHandlerFailed: (info) => {
      this.handler(info.handler).failed++;
    },
    onRetryScheduled: (info) => {
      this.retries++;
      this.handler(info.handler).retries++;
      if (info.event) this.retryWaiting.add(`${info.group}:${info.event.id}`);
    },
    onSkipped: (info) => {
      this.handler(info.handler).skipped++;
      if (info.event && info.reason === 'no-handler') this.settle(info.group, info.event.id, 'skipped');
    },
    onDeadLettered: ({ entry }) => {
      this.handler(entry.handler).deadLettered++;
      this.retryWaiting.delete(`${entry.group}:${entry.message.id}`);
      if (this.settle(entry.group, entry.message.id, 'deadLettered')) {
        this.byReason.set(entry.reason, (this.byReason.get(entry.reason) ?? 0) + 1);
      }
    },
  };

  /** Events some group still has to settle. */
  get outstanding(): number {
    return this.expected.size;
  }

  snapshot(): StatusSnapshot {
    const groups = [...this.groups.values()].map((g) => ({ ...g }));
    return {
      runId: this.runId,
      uptimeS: (Date.now() - this.startedAt) / 1000,
      published: this.published,
      publishedByType: Object.fromEntries(this.byType),
      publishFailed: this.publishFailed,
      handled: groups.reduce((n, g) => n + g.handled, 0),
      retrying: this.retryWaiting.size,
      retries: this.retries,
      deadLettered: groups.reduce((n, g) => n + g.deadLettered, 0),
      deadLetteredByReason: Object.fromEntries(this.byReason),
      outstanding: this.expected.size,
      groups,
      handlers: Object.fromEntries([...this.handlers].map(([k, v]) => [k, { ...v }])),
    };
  }

  private settle(group: string, id: string, how: 'handled' | 'skipped' | 'deadLettered'): boolean {
    const counts = this.groups.get(group);
    if (!counts) return false;
    const waiting = this.expected.get(id);
    if (!waiting) return false; // not an event of this run (left over in the file by an earlier one)
    if (!waiting.delete(group)) {
      counts.duplicates++;
      return false;
    }
    if (waiting.size === 0) this.expected.delete(id);
    counts[how]++;
    return true;
  }

  private handler(name: string): HandlerCounts {
    let h = this.handlers.get(name);
    if (!h)
      this.handlers.set(
        name,
        (h = { started: 0, handled: 0, failed: 0, retries: 0, deadLettered: 0, skipped: 0 }),
      );
    return h;
  }
}

/**
 * The live status line on stderr: redrawn in place with `\r` on a terminal, one plain line every
 * `plainEveryMs` otherwise (logs, CI).
 */
export class StatusLine {
  private timer: NodeJS.Timeout | undefined;
  private last: { at: number; published: number; handled: number } | undefined;
  private lastPlain = 0;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly snapshot: () => StatusSnapshot & { orderViolations: number },
    private readonly options: { intervalMs?: number; plainEveryMs?: number } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.intervalMs ?? 500);
    this.timer.unref();
  }

  /** Stops redrawing and ends the line so the next output starts clean. */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  /** Prints a message without tearing the status line. */
  note(text: string): void {
    if (this.drawn) this.stream.write('\r\x1b[2K');
    this.stream.write(`${text}\n`);
    this.drawn = false;
  }

  private tick(): void {
    const s = this.snapshot();
    const now = Date.now();
    const prev = this.last ?? { at: now - s.uptimeS * 1000, published: 0, handled: 0 };
    const dt = Math.max(0.001, (now - prev.at) / 1000);
    this.last = { at: now, published: s.published, handled: s.handled };
    const line = formatStatus(s, (s.published - prev.published) / dt, (s.handled - prev.handled) / dt);
    if (this.stream.isTTY) {
      this.stream.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (now - this.lastPlain >= (this.options.plainEveryMs ?? 5000)) {
      this.lastPlain = now;
      this.stream.write(`${line}\n`);
    }
  }
}

/** `published 1200 | handled 3400 | retrying 3 (retries 212) | dead-lettered 18 | 199 ev/s in, 597/s handled | order violations 0` */
export function formatStatus(
  s: StatusSnapshot & { orderViolations: number },
  publishRate: number,
  handleRate: number,
): string {
  return [
    `published ${s.published}`,
    `handled ${s.handled}`,
    `retrying ${s.retrying} (retries ${s.retries})`,
    `dead-lettered ${s.deadLettered}`,
    `${Math.round(publishRate)} ev/s in, ${Math.round(handleRate)}/s handled`,
    `order violations ${s.orderViolations}`,
  ].join(' | ');
}
