import { HeraldError, toError } from '../../core/errors.js';
import type { Delivery, Message } from '../../transport/transport.js';
import { decodeRecord } from './codec.js';
import { GroupConsumer } from './consumer.js';
import type { KafkaConsumerClient, KafkaRecord } from './driver.js';
import { kafkaName, type ResolvedKafkaOptions } from './options.js';
import { openReader } from './reader.js';

/*
 * Scheduled publish on Kafka, which has no delayed delivery (ADR 0923). Everything is a record
 * on one schedule topic, `<ns>.herald.scheduled`, keyed by message id, so the records of one id
 * share a partition and its log order decides:
 *
 *   schedule  the message, its topic and due time (headers)
 *   move      written by the scheduler when the message is due: "move it now"
 *   cancel    written by cancelScheduled
 *
 * The scheduler (consumer group `<ns>.herald.scheduler`, the adapter's GroupConsumer) holds each
 * schedule record unsettled, so the group's commit never passes it, and writes a `move` record at
 * the due time. Reading a `move` of a message still pending moves it (produce to its topic, then
 * ack); reading a `cancel` first drops it. A canceller replays the same partition from the
 * group's commit up to its own cancel record, so it knows exactly whether its cancel came first.
 */

/** The Herald name of the schedule topic and the scheduler group (namespaced like any other). */
export const SCHEDULE_TOPIC = 'herald.scheduled';
export const SCHEDULER_GROUP = 'herald.scheduler';

const OP = 'herald-sched-op';
const TOPIC = 'herald-sched-topic';
const AT = 'herald-sched-at';
const KEY = 'herald-sched-key';
const OWN = [OP, TOPIC, AT, KEY];

type Op = 'schedule' | 'move' | 'cancel';

interface Record_ {
  readonly op: Op;
  readonly topic: string;
  readonly id: string;
  readonly due: number;
  /** The message as it will be published (schedule records only). */
  readonly message: Message;
}

interface Pending {
  readonly record: Record_;
  delivery: Delivery;
  timer: NodeJS.Timeout | undefined;
}

/** Where a produced record landed. */
export interface Placement {
  readonly partition: number;
  readonly offset: number;
}

/** What the scheduler needs from its transport. */
export interface SchedulerContext {
  readonly options: ResolvedKafkaOptions;
  readonly report: (error: unknown, context: string) => void;
  /** Produces and resolves with where each record landed, in order. */
  readonly produce: (kafkaTopic: string, messages: readonly Message[]) => Promise<readonly Placement[]>;
  /** The scheduler group's committed offset (-1: none) and the high watermark, per partition. */
  readonly offsets: () => Promise<readonly { partition: number; committed: number; high: number }[]>;
}

/** Reading the schedule topic back did not reach the wanted offset in time. */
export class KafkaScheduleReadError extends HeraldError {
  constructor(detail: string) {
    super(
      'HERALD_KAFKA_SCHEDULE_READ',
      `reading the schedule topic failed: ${detail}; the cancel record is written, so the message will not be delivered if it was still pending; call again for the count`,
    );
  }
}

/** Publishes, cancels, counts and moves the scheduled messages of one namespace. */
export class Scheduler {
  private readonly kafkaTopic: string;
  private consumer: GroupConsumer | undefined;
  private starting: Promise<void> | undefined;
  private readonly pending = new Map<string, Pending>();
  private reader: Promise<KafkaConsumerClient> | undefined;
  private reading: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly ctx: SchedulerContext) {
    this.kafkaTopic = kafkaName(ctx.options.namespace, SCHEDULE_TOPIC, 'topic');
  }

  /** Joins the scheduler group (once per transport); moving goes on in the background. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const consumer = new GroupConsumer(
        { options: this.ctx.options, report: this.ctx.report, retired: () => undefined },
        SCHEDULE_TOPIC,
        this.kafkaTopic,
        kafkaName(this.ctx.options.namespace, SCHEDULER_GROUP, 'group'),
        // Every pending message is an unsettled delivery: the prefetch bounds how many one member
        // holds; beyond it the partition waits (late, never early).
        { group: SCHEDULER_GROUP, prefetch: 100_000, ordering: 'none', startFrom: 'earliest' },
        (d) => this.receive(d),
      );
      this.consumer = consumer;
      await consumer.start();
    })().catch((err: unknown) => {
      this.starting = undefined;
      throw err;
    });
    return this.starting;
  }

  async publish(topic: string, messages: readonly Message[], deliverAt: number): Promise<void> {
    await this.ctx.produce(
      this.kafkaTopic,
      messages.map((m) => encode('schedule', topic, m.id, deliverAt, m)),
    );
    await this.start();
  }

  /** Writes a cancel record per id, then replays each one's partition to count the ones that won. */
  async cancel(topic: string, ids: readonly string[]): Promise<number> {
    // A process that cancels schedules too: join the group now rather than at the first publish.
    const started = this.start();
    // The group's commit points are read before the cancels are written: afterwards the scheduler
    // may already have acted on a cancel and committed past it, and a replay starting there would
    // miss the schedule record and count 0 for a message that this cancel did remove. A commit
    // point read first never lies past a record that was still pending.
    const offsets = await this.ctx.offsets();
    const placements = await this.ctx.produce(
      this.kafkaTopic,
      ids.map((id) => encode('cancel', topic, id, 0)),
    );
    let count = 0;
    for (let i = 0; i < ids.length; i++) {
      const { partition, offset } = placements[i]!;
      const committed = offsets.find((o) => o.partition === partition)?.committed ?? -1;
      const state = await this.replay(partition, committed, offset);
      if (state.get(keyOf(topic, ids[i]!))) count++;
    }
    await started;
    return count;
  }

  /** Messages of `topic` scheduled, not yet due, not cancelled: a replay of every partition. */
  async count(topic: string): Promise<number> {
    const offsets = await this.ctx.offsets().catch(() => []);
    const now = Date.now();
    let count = 0;
    for (const { partition, committed, high } of offsets) {
      if (high <= Math.max(committed, 0)) continue;
      for (const r of (await this.replay(partition, committed, high)).values())
        if (r && r.topic === topic && r.due > now) count++;
    }
    return count;
  }

  /** Stops moving; unsettled schedule records stay uncommitted for the next scheduler. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    await this.starting?.catch(() => undefined);
    await this.consumer?.releaseAll();
    const reader = await this.reader?.catch(() => undefined);
    if (reader) await new Promise<void>((resolve) => reader.disconnect(() => resolve()));
  }

  private receive(d: Delivery): void {
    const r = decode(d.message);
    if (!r) {
      this.ctx.report(new Error(`record ${d.message.id} is not a schedule record`), 'scheduler');
      void d.ack();
      return;
    }
    const key = keyOf(r.topic, r.id);
    const p = this.pending.get(key);
    if (r.op === 'schedule') {
      if (p) {
        // The same id again while pending (a publisher's retry, or this partition read again
        // after a rebalance): the first due time stands, the latest record is the one held.
        void p.delivery.ack();
        p.delivery = d;
        return;
      }
      const entry: Pending = { record: r, delivery: d, timer: undefined };
      this.pending.set(key, entry);
      entry.timer = setTimeout(() => this.due(key, entry), Math.max(0, r.due - Date.now()));
      return;
    }
    if (!p) {
      void d.ack(); // moved or cancelled already
      return;
    }
    clearTimeout(p.timer);
    this.pending.delete(key);
    if (r.op === 'cancel') {
      void p.delivery.ack();
      void d.ack();
      return;
    }
    void this.ctx.produce(kafkaName(this.ctx.options.namespace, r.topic, 'topic'), [p.record.message]).then(
      () => Promise.all([p.delivery.ack(), d.ack()]),
      (err: unknown) => {
        // Not moved: both records stay uncommitted; try the move again shortly.
        this.ctx.report(err, `scheduler move to ${r.topic}`);
        this.pending.set(key, p);
        p.timer = setTimeout(() => this.due(key, p), 1000);
        void d.ack();
      },
    );
  }

  /** The message is due: append a `move`, which is acted on when read back, after any earlier cancel. */
  private due(key: string, p: Pending): void {
    p.timer = undefined;
    if (this.closed || this.pending.get(key) !== p) return;
    const r = p.record;
    this.ctx.produce(this.kafkaTopic, [encode('move', r.topic, r.id, r.due)]).catch((err: unknown) => {
      this.ctx.report(err, 'scheduler');
      if (this.pending.get(key) === p && !this.closed) p.timer = setTimeout(() => this.due(key, p), 1000);
    });
  }

  /**
   * Replays one partition from `committed` (the first record the scheduler group has not
   * settled) up to `end` (exclusive): per message, its schedule record while it is pending.
   * One replay at a time per transport (one reader client).
   */
  private replay(
    partition: number,
    committed: number,
    end: number,
  ): Promise<Map<string, Record_ | undefined>> {
    const run = this.reading.then(() => this.read(partition, committed, end));
    this.reading = run.catch(() => undefined);
    return run;
  }

  private async read(
    partition: number,
    committed: number,
    end: number,
  ): Promise<Map<string, Record_ | undefined>> {
    const state = new Map<string, Record_ | undefined>();
    if (committed >= end) return state;
    const reader = await this.openReader();
    reader.assign([{ topic: this.kafkaTopic, partition, offset: committed >= 0 ? committed : -2 }]);
    const deadline = Date.now() + this.ctx.options.connectTimeoutMs * 3;
    try {
      for (;;) {
        const records = await new Promise<KafkaRecord[]>((resolve, reject) =>
          reader.consume(500, (err, list) => (err ? reject(toError(err)) : resolve(list))),
        );
        for (const record of records) {
          if (record.offset >= end) return state;
          const r = decode(decodeRecord(this.kafkaTopic, record));
          if (!r) continue;
          const key = keyOf(r.topic, r.id);
          if (r.op === 'schedule') {
            if (!state.get(key)) state.set(key, r);
          } else state.set(key, undefined);
          if (record.offset === end - 1) return state;
        }
        if (Date.now() > deadline)
          throw new KafkaScheduleReadError(`partition ${partition} did not reach offset ${end} in time`);
      }
    } finally {
      reader.unassign();
    }
  }

  private openReader(): Promise<KafkaConsumerClient> {
    this.reader ??= openReader(this.ctx.options, 'schedule-reader', this.ctx.report).catch((err: unknown) => {
      this.reader = undefined;
      throw err;
    });
    return this.reader;
  }
}

function keyOf(topic: string, id: string): string {
  return `${topic}\n${id}`;
}

function encode(op: Op, topic: string, id: string, due: number, m?: Message): Message {
  const headers: Record<string, string> = {
    ...(m?.headers ?? {}),
    [OP]: op,
    [TOPIC]: topic,
    [AT]: String(due),
  };
  if (m?.key !== undefined) headers[KEY] = m.key;
  // Keyed by id: every record of one message lands on one partition, in order.
  return { id, key: id, headers, body: m?.body ?? new Uint8Array(0) };
}

function decode(record: Message): Record_ | undefined {
  const h = record.headers;
  const op = h[OP];
  const topic = h[TOPIC];
  const due = Number(h[AT]);
  if ((op !== 'schedule' && op !== 'move' && op !== 'cancel') || !topic || !Number.isFinite(due))
    return undefined;
  const headers: Record<string, string> = {};
  for (const name in h) if (!OWN.includes(name)) headers[name] = h[name]!;
  const key = h[KEY];
  const message: Message =
    key === undefined
      ? { id: record.id, headers, body: record.body }
      : { id: record.id, key, headers, body: record.body };
  return { op, topic, id: record.id, due, message };
}
