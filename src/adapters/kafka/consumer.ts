import { toError } from '../../core/errors.js';
import type {
  Delivery,
  DeliveryHandler,
  GroupStats,
  SubscribeOptions,
  Subscription,
} from '../../transport/transport.js';
import { validateDelay } from '../../transport/validate.js';
import { decodeRecord } from './codec.js';
import {
  ASSIGN_PARTITIONS,
  KafkaConsumer,
  REVOKE_PARTITIONS,
  type Assignment,
  type KafkaConsumerClient,
  type KafkaRecord,
  type LibrdKafkaError,
  type TopicPartitionOffset,
} from './driver.js';
import type { ResolvedKafkaOptions } from './options.js';
import { PartitionState, type Entry } from './partition.js';
import { consumerClosed, consumerOpened, oneCloseAtATime } from './pool.js';

/** What a member needs from its transport. */
export interface ConsumerContext {
  readonly options: ResolvedKafkaOptions;
  readonly report: (error: unknown, context: string) => void;
  /** Called once the member has left its group. */
  readonly retired: (consumer: GroupConsumer) => void;
}

type Op = 'ack' | 'nack' | 'release';

/**
 * One member of a consumer group on one topic: a librdkafka consumer polled from its own loop,
 * decoupled from the handlers. Records are handed out up to `prefetch` at a time, across
 * partitions and, with per-key order, across keys of one partition (a key's next record waits
 * until the previous one is settled). Offsets are committed only up to the first unsettled
 * record of each partition. A member holding too much pauses its partitions but keeps polling,
 * so a slow handler never exceeds `max.poll.interval.ms`. See docs/adr/0922.
 */
export class GroupConsumer implements Subscription {
  private readonly client: KafkaConsumerClient;
  private readonly partitions = new Map<number, PartitionState>();
  /** Entries due for (re)delivery ahead of new ones: retries, releases, a key's next record. */
  private retries: Entry[] = [];
  private fresh: Entry[] = [];
  private freshHead = 0;
  private outstanding = 0;
  private delayed = 0;
  private readonly ordering: 'key' | 'none';
  /** Handing out new deliveries. */
  private active = true;
  /** The poll loop runs (until the member leaves). */
  private polling = true;
  /** Unsettled deliveries are dropped (transport closing): settles become no-ops. */
  private released = false;
  private paused = false;
  private loopDone: Promise<void> = Promise.resolve();
  private leaving: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private assigned: (() => void) | undefined;
  private idleWake: (() => void) | undefined;
  /** Counted among the process's open consumers (threadpool warning). */
  private counted = false;

  constructor(
    private readonly ctx: ConsumerContext,
    /** The Herald topic. */
    readonly topic: string,
    private readonly kafkaTopic: string,
    private readonly groupId: string,
    private readonly options: SubscribeOptions,
    private readonly onDelivery: DeliveryHandler,
  ) {
    this.ordering = options.ordering ?? 'key';
    const o = ctx.options;
    this.client = new KafkaConsumer({
      ...o.librdkafka,
      'bootstrap.servers': o.brokers,
      'client.id': o.clientId,
      'group.id': groupId,
      'enable.auto.commit': false,
      'enable.auto.offset.store': false,
      'allow.auto.create.topics': true,
      'partition.assignment.strategy': o.rebalance === 'cooperative' ? 'cooperative-sticky' : 'range',
      'session.timeout.ms': o.sessionTimeoutMs,
      'max.poll.interval.ms': o.maxPollIntervalMs,
      'topic.metadata.refresh.interval.ms': 2000,
      // Kafka's default of 500 ms would add up to that much latency on a quiet partition.
      'fetch.wait.max.ms': 100,
      'auto.offset.reset': options.startFrom === 'latest' ? 'latest' : 'earliest',
      rebalance_cb: (err: LibrdKafkaError, assignment: Assignment[]) => this.rebalanced(err, assignment),
      offset_commit_cb: (err: LibrdKafkaError | null, offsets: TopicPartitionOffset[]) => {
        if (!err || err.code === -168 /* nothing to commit */) return;
        this.ctx.report(err, `commit ${this.label}`);
        // Not committed (e.g. a rebalance in progress): send these offsets again next time.
        for (const o of offsets ?? []) {
          const state = this.partitions.get(o.partition);
          if (state && state.committed === o.offset) state.committed = -1;
        }
        if (this.polling) this.scheduleCommit();
      },
    });
    this.client.on('event.error', (err) => this.ctx.report(err, `consumer ${this.label}`));
  }

  get group(): string {
    return this.options.group;
  }

  private get label(): string {
    return `${this.kafkaTopic}/${this.groupId}`;
  }

  /**
   * Connects and joins the group. A group that starts from `latest` waits (up to
   * `assignTimeoutMs`) for its first assignment, so nothing published after `subscribe` resolves
   * is skipped; from `earliest` (the default) nothing can be missed and joining goes on in the
   * background.
   */
  async start(): Promise<void> {
    const o = this.ctx.options;
    await new Promise<void>((resolve, reject) => {
      this.client.connect({ timeout: o.connectTimeoutMs }, (err) => (err ? reject(toError(err)) : resolve()));
    });
    this.counted = true;
    consumerOpened((err, context) => this.ctx.report(err, context));
    this.client.setDefaultConsumeTimeout(o.pollTimeoutMs);
    this.client.setDefaultIsTimeoutOnlyForFirstMessage(true);
    const assigned = new Promise<void>((resolve) => (this.assigned = resolve));
    this.client.subscribe([this.kafkaTopic]);
    this.loopDone = this.loop();
    if (this.options.startFrom !== 'latest') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      assigned,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, o.assignTimeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /** Stops handing out deliveries. The member stays in its group until its deliveries are settled. */
  async close(): Promise<void> {
    if (this.active) {
      this.active = false;
      this.setPaused(true);
    }
    if (this.outstanding === 0) await this.leave();
  }

  /** Transport shutdown: unsettled deliveries go back to the group uncommitted; later settles are no-ops. */
  async releaseAll(): Promise<void> {
    this.active = false;
    this.released = true;
    await this.leave();
  }

  /** Local view of the group for `stats()`: per partition, what this member has not handed out yet. */
  localStats(): {
    partitions: Map<number, { fetched: number; waiting: number }>;
    inFlight: number;
    delayed: number;
  } {
    const partitions = new Map<number, { fetched: number; waiting: number }>();
    for (const [p, state] of this.partitions) {
      const waiting = state.unsettled().filter((e) => !e.outstanding && e.timer === undefined).length;
      partitions.set(p, { fetched: state.fetched, waiting });
    }
    return { partitions, inFlight: this.outstanding, delayed: this.delayed };
  }

  /** Queried watermarks for lag, through this member's connection. */
  watermarks(partition: number, timeoutMs: number): Promise<{ high: number; low: number }> {
    return new Promise((resolve, reject) => {
      this.client.queryWatermarkOffsets(this.kafkaTopic, partition, timeoutMs, (err, offsets) =>
        err ? reject(toError(err)) : resolve({ high: offsets.highOffset, low: offsets.lowOffset }),
      );
    });
  }

  /** Called once per delivery by KafkaDelivery. */
  settle(entry: Entry, op: Op, delayMs: number): void {
    if (this.released || entry.settled || !entry.outstanding || entry.partition.revoked) return;
    entry.outstanding = false;
    this.outstanding--;
    if (op === 'ack') {
      entry.settled = true;
      this.nextOfKey(entry);
      this.scheduleCommit();
    } else if (op === 'release') {
      entry.attempt--; // not a failed attempt: the next delivery carries the same number
      this.retries.push(entry);
    } else if (delayMs === 0) {
      this.retries.push(entry);
    } else {
      this.delayed++;
      entry.timer = setTimeout(() => {
        entry.timer = undefined;
        this.delayed--;
        if (entry.partition.revoked || this.released) return;
        this.retries.push(entry);
        this.pump();
      }, delayMs);
    }
    if (!this.active && this.outstanding === 0) {
      void this.leave();
      return;
    }
    this.pump();
  }

  private async loop(): Promise<void> {
    let backoffMs = 0;
    while (this.polling) {
      this.setPaused(!this.active || this.buffered() >= this.options.prefetch + this.ctx.options.maxBuffered);
      let records: KafkaRecord[];
      try {
        records = await this.poll(
          this.paused ? 1 : Math.min(1000, this.options.prefetch + this.ctx.options.maxBuffered),
        );
        backoffMs = 0;
      } catch (err) {
        if (!this.polling) break;
        this.ctx.report(err, `poll ${this.label}`);
        backoffMs = Math.min(Math.max(backoffMs * 2, 50), 2_000);
        await new Promise((resolve) => setTimeout(resolve, backoffMs));
        continue;
      }
      for (const record of records) this.accept(record);
      if (records.length > 0) this.pump();
      if (records.length === 0 && this.paused && this.polling) {
        // Nothing can arrive while paused: wait for a settle instead of spinning.
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            this.idleWake = undefined;
            resolve();
          };
          const timer = setTimeout(done, this.ctx.options.pollTimeoutMs);
          this.idleWake = done;
        });
      }
    }
  }

  private poll(max: number): Promise<KafkaRecord[]> {
    return new Promise((resolve, reject) => {
      this.client.consume(max, (err, records) => (err ? reject(toError(err)) : resolve(records)));
    });
  }

  private buffered(): number {
    let n = 0;
    for (const state of this.partitions.values()) n += state.size;
    return n;
  }

  private accept(record: KafkaRecord): void {
    const state = this.partitions.get(record.partition);
    if (!state || record.offset <= state.fetched) return; // revoked meanwhile, or seen before a pause
    const entry = state.add(record.offset, decodeRecord(this.topic, record));
    const key = entry.message.key;
    if (this.ordering === 'key' && key !== undefined) {
      const queue = state.keys.get(key);
      if (queue) {
        queue.push(entry); // held back until the key's earlier records are settled
        return;
      }
      state.keys.set(key, [entry]);
    }
    this.fresh.push(entry);
  }

  /** Hands out as many deliveries as there are free prefetch slots. */
  private pump(): void {
    while (this.active && this.outstanding < this.options.prefetch) {
      const entry = this.retries.length > 0 ? this.retries.shift() : this.takeFresh();
      if (!entry) break;
      if (entry.settled || entry.outstanding || entry.partition.revoked) continue;
      this.handOut(entry);
    }
    if (this.paused && this.active && this.idleWake) this.idleWake();
  }

  private takeFresh(): Entry | undefined {
    if (this.freshHead >= this.fresh.length) return undefined;
    const entry = this.fresh[this.freshHead++]!;
    if (this.freshHead > 1024 && this.freshHead * 2 > this.fresh.length) {
      this.fresh = this.fresh.slice(this.freshHead);
      this.freshHead = 0;
    }
    return entry;
  }

  private handOut(entry: Entry): void {
    entry.attempt++;
    entry.outstanding = true;
    this.outstanding++;
    const delivery = new KafkaDelivery(this, entry, this.topic, this.options.group, entry.attempt);
    try {
      const result = this.onDelivery(delivery);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(delivery, err));
    } catch (err) {
      this.handlerCrashed(delivery, err);
    }
  }

  private handlerCrashed(delivery: KafkaDelivery, err: unknown): void {
    this.ctx.report(err, `delivery handler of ${this.label} threw`);
    void delivery.nack({ delayMs: 1000 }).catch(() => undefined);
  }

  /** After an ack, the next record of the same key may go out. */
  private nextOfKey(entry: Entry): void {
    const key = entry.message.key;
    if (this.ordering !== 'key' || key === undefined) return;
    const queue = entry.partition.keys.get(key);
    if (!queue) return;
    queue.shift();
    if (queue.length > 0) this.retries.push(queue[0]!);
    else entry.partition.keys.delete(key);
  }

  private scheduleCommit(): void {
    if (this.commitTimer) return;
    this.commitTimer = setTimeout(() => {
      this.commitTimer = undefined;
      this.commit(false);
    }, this.ctx.options.commitIntervalMs);
  }

  /** Commits every partition's settled prefix that moved. */
  private commit(sync: boolean, only?: readonly PartitionState[], force = false): void {
    const offsets: TopicPartitionOffset[] = [];
    for (const state of only ?? this.partitions.values()) {
      if (state.revoked) continue;
      const point = state.commitPoint();
      // `force`: an asynchronous commit of the same point may still be in the air; send it again
      // synchronously before leaving, so it is not dropped with the connection.
      if ((point > state.committed || (force && state.committed >= 0)) && point > 0) {
        offsets.push({ topic: this.kafkaTopic, partition: state.partition, offset: point });
        state.committed = point;
      }
    }
    if (offsets.length === 0) return;
    try {
      if (sync) this.client.commitSync(offsets);
      else this.client.commit(offsets);
    } catch (err) {
      // Not committed: the records come again after a rebalance or crash (at least once).
      this.ctx.report(err, `commit ${this.label}`);
    }
  }

  private rebalanced(err: LibrdKafkaError, assignment: Assignment[]): void {
    // From the configured assignor, not client.rebalanceProtocol(): while disconnect() closes the
    // consumer that answers "NONE", the eager unassign() below is then refused by a cooperative
    // group without an error reaching us, and librdkafka's close waits for the unassign forever,
    // holding one of the four libuv pool threads for good (four such closes stall the process).
    const cooperative = this.ctx.options.rebalance === 'cooperative';
    try {
      if (err.code === ASSIGN_PARTITIONS) {
        for (const a of assignment) {
          if (a.topic === this.kafkaTopic && !this.partitions.has(a.partition))
            this.partitions.set(a.partition, new PartitionState(a.topic, a.partition));
        }
        if (cooperative) this.client.incrementalAssign(assignment);
        else this.client.assign(assignment);
        if (this.paused && assignment.length > 0) this.client.pause(assignment);
        this.assigned?.();
        this.assigned = undefined;
      } else if (err.code === REVOKE_PARTITIONS) {
        this.revoke(cooperative ? assignment.map((a) => a.partition) : [...this.partitions.keys()]);
        if (cooperative) this.client.incrementalUnassign(assignment);
        else this.client.unassign();
      } else {
        this.ctx.report(err, `rebalance ${this.label}`);
      }
    } catch (thrown) {
      if (this.client.isConnected()) this.ctx.report(thrown, `rebalance ${this.label}`);
    }
  }

  /**
   * Partitions taken away: commit their settled prefix now, then forget them. Deliveries still
   * out become no-ops when settled (released): the next owner reads them again from the commit.
   */
  private revoke(partitions: readonly number[]): void {
    const states = partitions.map((p) => this.partitions.get(p)).filter((s): s is PartitionState => !!s);
    if (!this.released) this.commit(true, states, true);
    for (const state of states) {
      state.revoked = true;
      for (const entry of state.unsettled()) {
        if (entry.outstanding) {
          entry.outstanding = false;
          this.outstanding--;
        }
        if (entry.timer) {
          clearTimeout(entry.timer);
          entry.timer = undefined;
          this.delayed--;
        }
      }
      this.partitions.delete(state.partition);
    }
    this.retries = this.retries.filter((e) => !e.partition.revoked);
    if (!this.active && this.outstanding === 0) void this.leave();
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused) return;
    const list = [...this.partitions.keys()].map((partition) => ({ topic: this.kafkaTopic, partition }));
    try {
      if (paused) this.client.pause(list);
      else this.client.resume(list);
      this.paused = paused;
    } catch (err) {
      this.ctx.report(err, `${paused ? 'pause' : 'resume'} ${this.label}`);
    }
  }

  /** How long a close may take before it is abandoned: the session timeout plus a margin. */
  private closeBoundMs(): number {
    return this.ctx.options.sessionTimeoutMs + 5_000;
  }

  /**
   * Commits the settled prefixes, leaves the group and disconnects, one consumer of the process at
   * a time (see pool.ts). Until its turn the poll loop goes on, paused, so that this member keeps
   * answering the rebalances that the closes before it cause.
   */
  private leave(): Promise<void> {
    this.leaving ??= oneCloseAtATime(this.closeBoundMs(), async () => {
      this.active = false;
      this.polling = false;
      this.idleWake?.();
      await this.loopDone;
      if (this.commitTimer) clearTimeout(this.commitTimer);
      this.commitTimer = undefined;
      if (this.client.isConnected()) this.commit(true, undefined, true);
      for (const state of this.partitions.values()) {
        for (const entry of state.unsettled()) if (entry.timer) clearTimeout(entry.timer);
      }
      this.delayed = 0;
      // Bounded: a close that librdkafka never finishes (a hung coordinator) must not hang stop().
      // Its pool thread stays taken; the warning says so.
      let bound: NodeJS.Timeout | undefined;
      const closed = await Promise.race([
        new Promise<boolean>((resolve) => this.client.disconnect(() => resolve(true))),
        new Promise<boolean>((resolve) => (bound = setTimeout(() => resolve(false), this.closeBoundMs()))),
      ]);
      clearTimeout(bound);
      if (!closed)
        this.ctx.report(
          new Error(
            `consumer close of ${this.label} did not finish within ${this.closeBoundMs()} ms; abandoned ` +
              '(the group takes its partitions back after the session timeout; one libuv pool thread stays blocked)',
          ),
          `close ${this.label}`,
        );
      if (this.counted) consumerClosed();
      this.counted = false;
      this.released = true;
      this.partitions.clear();
      this.ctx.retired(this);
    });
    return this.leaving;
  }
}

/** One delivery of one record. */
class KafkaDelivery implements Delivery {
  private done = false;

  constructor(
    private readonly consumer: GroupConsumer,
    private readonly entry: Entry,
    readonly topic: string,
    readonly group: string,
    readonly attempt: number,
  ) {}

  get message(): Entry['message'] {
    return this.entry.message;
  }

  ack(): Promise<void> {
    return this.settle('ack', 0);
  }

  nack(options?: { delayMs?: number }): Promise<void> {
    return this.settle('nack', validateDelay(options?.delayMs));
  }

  release(): Promise<void> {
    return this.settle('release', 0);
  }

  private settle(op: Op, delayMs: number): Promise<void> {
    if (this.done) return Promise.resolve();
    this.done = true;
    this.consumer.settle(this.entry, op, delayMs);
    return Promise.resolve();
  }
}

export type { GroupStats };
