import {
  AckPolicy,
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
} from '@nats-io/jetstream';
import { toError } from '../../core/errors.js';
import type {
  Delivery,
  DeliveryHandler,
  Message,
  SubscribeOptions,
  Subscription,
} from '../../transport/transport.js';
import { validateDelay } from '../../transport/validate.js';
import { decodeMessage } from './codec.js';
import type { Connection } from './connection.js';
import { consumerDescription, token } from './names.js';
import type { ResolvedTransportOptions } from './options.js';
import { isNotFound, type Broker, type Handles } from './state.js';

/** What a consumer needs from its transport. */
export interface ConsumerContext {
  readonly broker: Broker;
  readonly connection: Connection;
  readonly options: ResolvedTransportOptions;
  /** Called once the consumer is closed and holds no delivery any more. */
  readonly retired: (consumer: GroupConsumer) => void;
}

/** Per key (of this group and topic), what this member knows and holds. */
interface Lane {
  /** Stream sequence of the key's message handed out or being checked here. */
  busy: number | undefined;
  /** Messages of the key waiting for an earlier one, lowest sequence first. */
  held: Admitted[];
  nextCheckAt: number;
  backoffMs: number;
}

interface Admitted {
  readonly msg: JsMsg;
  readonly message: Message;
  readonly attempt: number;
  /** A retries record exists for this message (delete it once the message is acked). */
  readonly record: RetryRecord | undefined;
}

interface RetryRecord {
  readonly r: number;
  readonly due?: number;
}

interface KeyState {
  done: number;
  rev: number;
}

const POLL_MS = 50;
const MAX_BACKOFF_MS = 1000;

/**
 * One member of a group: a durable pull consumer shared by every member. Pulls exactly as many
 * messages as it has free prefetch slots (the backlog stays on the server), keeps the leases of
 * what it holds alive with `working()`, and applies per-key order with the key-order bucket
 * (docs/adr/0901-nats-per-key-order.md).
 */
export class GroupConsumer implements Subscription {
  readonly durable: string;
  private readonly ordering: 'key' | 'none';
  private readonly prefix: string;
  private readonly outstanding = new Map<number, NatsDelivery>();
  private readonly lanes = new Map<string, Lane>();
  private readonly keyStates = new Map<string, KeyState>();
  private readonly fetches = new Set<ConsumerMessages>();
  private heldCount = 0;
  private requested = 0;
  private active = true;
  private released = false;
  private errors = 0;
  private pumpTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private h!: Handles;
  private consumer!: Consumer;
  /** Stream sequence before the first message this group consumes (0 from the start). */
  private floor = 0;
  private flushing: Promise<void> | undefined;
  private readonly pendingSettles = new Set<Promise<void>>();
  private readonly maxHeld: number;

  constructor(
    private readonly ctx: ConsumerContext,
    readonly topic: string,
    private readonly options: SubscribeOptions,
    private readonly onDelivery: DeliveryHandler,
  ) {
    this.ordering = options.ordering ?? 'key';
    this.durable = ctx.broker.names.consumer(topic, options.group);
    this.prefix = `${token(options.group)}.${token(topic)}`;
    this.maxHeld = ctx.options.maxHeld ?? Math.max(64, 4 * options.prefetch);
  }

  get group(): string {
    return this.options.group;
  }

  async start(): Promise<void> {
    this.h = await this.ctx.broker.handles();
    await this.ensureConsumer();
    const every = Math.max(50, Math.floor(this.ctx.options.ackWaitMs / 3));
    this.heartbeat = setInterval(() => this.renewLeases(), every);
    this.heartbeat.unref();
    if (this.ordering === 'key') {
      this.poller = setInterval(() => this.pollLanes(), POLL_MS);
      this.poller.unref();
    }
    this.pump();
  }

  /** Stops pulling; handed-out deliveries stay settle-able (their leases keep being renewed). */
  async close(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    if (this.poller) clearInterval(this.poller);
    for (const f of this.fetches) f.stop();
    // Held messages were never handed out: back to the group, uncounted.
    const held: Admitted[] = [];
    for (const lane of this.lanes.values()) held.push(...lane.held.splice(0));
    this.heldCount = 0;
    await Promise.all(held.map((a) => this.releaseMsg(a.msg, a.record).catch(() => undefined)));
    this.maybeRetire();
  }

  /** Transport shutdown: every unsettled delivery goes back to the group, uncounted; later settles are no-ops. */
  async releaseAll(): Promise<void> {
    await this.close();
    const all = [...this.outstanding.values()];
    this.outstanding.clear();
    this.released = true;
    await Promise.all(
      all.map((d) => {
        d.done = true;
        return this.releaseMsg(d.msg, d.record).catch(() => undefined);
      }),
    );
    await Promise.allSettled([...this.pendingSettles]);
    await this.flush().catch(() => undefined);
    this.stopTimers();
  }

  /** Called once per delivery by NatsDelivery. */
  settle(d: NatsDelivery, op: 'a' | 'n' | 'r', delayMs: number): Promise<void> {
    if (this.released) return Promise.resolve();
    // Forget it now: its redelivery may arrive before this settle is confirmed.
    if (this.outstanding.get(d.msg.seq) === d) this.outstanding.delete(d.msg.seq);
    if (op === 'a' && d.lane === undefined && d.record === undefined) {
      // The common case: ack, confirmed with everything else acked in this turn.
      d.msg.ack();
      this.pump();
      const confirmed = this.flush();
      if (!this.active) this.maybeRetireAfter(confirmed);
      return confirmed;
    }
    const p = this.doSettle(d, op, delayMs).finally(() => {
      this.pendingSettles.delete(p);
      if (d.lane !== undefined) this.freeLane(d.lane, d.msg.seq);
      this.pump();
      this.maybeRetire();
    });
    this.pendingSettles.add(p);
    return p;
  }

  private async doSettle(d: NatsDelivery, op: 'a' | 'n' | 'r', delayMs: number): Promise<void> {
    try {
      if (op === 'a') {
        // The key's watermark moves before the ack: a crash in between redelivers a message the
        // watermark already covers, which is then acknowledged without running again.
        if (d.lane !== undefined) await this.advance(d.lane, d.msg.seq);
        d.msg.ack();
        await this.flush();
        if (d.record) void this.h.retries.delete(this.recordKey(d.msg.seq)).catch(() => undefined);
      } else if (op === 'n') {
        if (delayMs > 0) {
          await this.h.retries.put(
            this.recordKey(d.msg.seq),
            JSON.stringify({ r: d.record?.r ?? 0, due: Date.now() + delayMs }),
          );
        }
        d.msg.nak(delayMs > 0 ? delayMs : undefined);
        await this.flush();
      } else {
        await this.releaseMsg(d.msg, d.record);
      }
    } catch (err) {
      // The lease runs out and the message comes back: not lost.
      this.ctx.connection.report(err, `settle on ${this.topic}/${this.group}`);
      throw toError(err);
    }
  }

  /** Back to the group at once without counting an attempt: the release is recorded first. */
  private async releaseMsg(msg: JsMsg, record: RetryRecord | undefined): Promise<void> {
    await this.h.retries.put(this.recordKey(msg.seq), JSON.stringify({ r: (record?.r ?? 0) + 1 }));
    msg.nak();
    await this.flush();
  }

  /** Everything settled in one turn of the event loop is confirmed by one flush. */
  private flush(): Promise<void> {
    this.flushing ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.flushing = undefined;
        this.h.nc.flush().then(resolve, reject);
      });
    });
    return this.flushing;
  }

  /** Pulls as many messages as there are free prefetch slots, in batches of at least half of them. */
  private pump(): void {
    if (!this.active || this.pumpTimer) return;
    let free = this.options.prefetch - this.outstanding.size - this.requested;
    if (this.heldCount >= this.maxHeld) {
      // Full of messages waiting for their keys: pull one at a time, and only when idle. The
      // server delivers due redeliveries (the keys' heads) before new messages.
      if (this.outstanding.size > 0 || this.requested > 0) return;
      free = Math.min(free, 1);
    }
    if (free <= 0) return;
    if (this.requested > 0 && free < Math.max(1, Math.floor(this.options.prefetch / 2))) return;
    void this.pull(free);
  }

  private async pull(n: number): Promise<void> {
    this.requested += n;
    let got = 0;
    let failed = false;
    let iter: ConsumerMessages | undefined;
    try {
      iter = await this.consumer.fetch({ max_messages: n, expires: this.ctx.options.pullExpiresMs });
      this.fetches.add(iter);
      if (!this.active) iter.stop();
      for await (const msg of iter) {
        got++;
        this.requested--;
        this.receive(msg);
      }
      this.errors = 0;
    } catch (err) {
      failed = true;
      if (this.active) {
        this.errors++;
        this.ctx.connection.report(err, `pull ${this.topic}/${this.group}`);
        if (isNotFound(err)) await this.ensureConsumer().catch(() => undefined);
      }
    } finally {
      if (iter) this.fetches.delete(iter);
      this.requested -= n - got;
    }
    if (!this.active) return;
    if (failed) {
      const wait = Math.min(50 * 2 ** Math.min(this.errors, 6), 2000);
      this.pumpTimer = setTimeout(() => {
        this.pumpTimer = undefined;
        this.pump();
      }, wait);
      this.pumpTimer.unref();
    } else this.pump();
  }

  private receive(msg: JsMsg): void {
    if (!this.active) {
      void this.releaseMsg(msg, undefined).catch(() => undefined);
      return;
    }
    if (this.outstanding.has(msg.seq)) return; // a second lease of a message still being handled here
    const message = decodeMessage(msg.headers, msg.data, this.ctx.broker.names.topicsStream, msg.seq);
    if (msg.info.deliveryCount === 1 && (this.ordering === 'none' || message.key === undefined)) {
      // First delivery with nothing to look up: straight to the handler.
      this.handOut({ msg, message, attempt: 1, record: undefined }, undefined);
      return;
    }
    // A placeholder holds the slot while the attempt and the key order are looked up.
    const placeholder = new NatsDelivery(this, msg, message, this.topic, this.group, 1, undefined);
    this.outstanding.set(msg.seq, placeholder);
    void this.admit(msg, message).catch((err: unknown) => {
      // Could not look up the attempt or the key: the lease runs out and the message comes back.
      this.outstanding.delete(msg.seq);
      this.ctx.connection.report(err, `admit on ${this.topic}/${this.group}`);
      this.pump();
    });
  }

  private async admit(msg: JsMsg, message: Message): Promise<void> {
    let record: RetryRecord | undefined;
    let attempt = msg.info.deliveryCount;
    if (attempt > 1) {
      const e = await this.h.retries.get(this.recordKey(msg.seq));
      if (e && e.operation === 'PUT' && e.length > 0) {
        record = JSON.parse(e.string()) as RetryRecord;
        attempt = Math.max(1, attempt - record.r);
      }
    }
    const a: Admitted = { msg, message, attempt, record };
    if (this.ordering === 'none' || message.key === undefined) return this.handOut(a, undefined);
    const laneKey = `${this.prefix}.${msg.subject.slice(msg.subject.lastIndexOf('.') + 1)}`;
    let lane = this.lanes.get(laneKey);
    if (!lane) {
      lane = { busy: undefined, held: [], nextCheckAt: 0, backoffMs: POLL_MS };
      this.lanes.set(laneKey, lane);
    }
    this.outstanding.delete(msg.seq); // not handed out: takes no prefetch slot while it waits
    this.hold(laneKey, lane, a);
    this.pump();
    if (lane.busy === undefined) await this.checkHead(laneKey, lane);
  }

  private hold(laneKey: string, lane: Lane, a: Admitted): void {
    if (lane.held.some((h) => h.msg.seq === a.msg.seq)) return;
    let i = lane.held.length;
    while (i > 0 && lane.held[i - 1]!.msg.seq > a.msg.seq) i--;
    lane.held.splice(i, 0, a);
    this.heldCount++;
    void laneKey;
  }

  /** Hands out the lowest held message of a key if it is the key's next unsettled one in the stream. */
  private async checkHead(laneKey: string, lane: Lane): Promise<void> {
    const head = lane.held[0];
    if (!head || lane.busy !== undefined || !this.active) return;
    lane.busy = head.msg.seq;
    let verdict: 'go' | 'done' | 'wait';
    try {
      verdict = await this.verdict(laneKey, head.msg);
    } catch (err) {
      lane.busy = undefined;
      this.ctx.connection.report(err, `key order on ${this.topic}/${this.group}`);
      this.backoff(lane);
      return;
    }
    if (!this.active || lane.held[0] !== head) {
      lane.busy = undefined;
      return;
    }
    if (verdict === 'wait') {
      lane.busy = undefined;
      this.backoff(lane);
      return;
    }
    lane.held.shift();
    this.heldCount--;
    lane.backoffMs = POLL_MS;
    if (verdict === 'done') {
      // Handled before, but its ack was lost: acknowledge without running it again.
      lane.busy = undefined;
      head.msg.ack();
      if (head.record) void this.h.retries.delete(this.recordKey(head.msg.seq)).catch(() => undefined);
      return this.checkHead(laneKey, lane);
    }
    this.handOut(head, laneKey);
  }

  private async verdict(laneKey: string, msg: JsMsg): Promise<'go' | 'done' | 'wait'> {
    let state = this.keyStates.get(laneKey);
    let fresh = false;
    if (!state) {
      state = await this.readKeyState(laneKey);
      fresh = true;
    }
    for (;;) {
      if (msg.seq <= state.done) return 'done';
      const next = await this.h.jsm.direct.getMessage(this.ctx.broker.names.topicsStream, {
        next_by_subj: msg.subject,
        seq: Math.max(state.done, this.floor) + 1,
      });
      if (!next || next.seq >= msg.seq) return 'go';
      if (fresh) return 'wait';
      // Our watermark may be old (another member moved it): read it and look again.
      state = await this.readKeyState(laneKey);
      fresh = true;
    }
  }

  private async readKeyState(laneKey: string): Promise<KeyState> {
    const e = await this.h.keyOrder.get(laneKey);
    const state =
      e && e.operation === 'PUT'
        ? { done: Number(e.string()), rev: e.revision }
        : { done: 0, rev: e?.revision ?? 0 };
    const known = this.keyStates.get(laneKey);
    if (known && known.done > state.done) return known;
    this.keyStates.set(laneKey, state);
    return state;
  }

  /** Moves the key's watermark to `seq`, never backwards (compare-and-set on the entry's revision). */
  private async advance(laneKey: string, seq: number): Promise<void> {
    let state = this.keyStates.get(laneKey) ?? (await this.readKeyState(laneKey));
    for (let i = 0; ; i++) {
      if (state.done >= seq) return;
      try {
        const rev =
          state.rev === 0
            ? await this.h.keyOrder.create(laneKey, String(seq))
            : await this.h.keyOrder.update(laneKey, String(seq), state.rev);
        this.keyStates.set(laneKey, { done: seq, rev });
        return;
      } catch (err) {
        if (i >= 5) throw err;
        this.keyStates.delete(laneKey);
        state = await this.readKeyState(laneKey);
      }
    }
  }

  private freeLane(laneKey: string, seq: number): void {
    const lane = this.lanes.get(laneKey);
    if (!lane || lane.busy !== seq) return;
    lane.busy = undefined;
    lane.nextCheckAt = 0;
    lane.backoffMs = POLL_MS;
    if (lane.held.length === 0) this.lanes.delete(laneKey);
    else void this.checkHead(laneKey, lane);
  }

  private backoff(lane: Lane): void {
    lane.nextCheckAt = Date.now() + lane.backoffMs;
    lane.backoffMs = Math.min(lane.backoffMs * 2, MAX_BACKOFF_MS);
  }

  /** Held keys whose earlier message is at another member (or waiting for its retry) are looked at again. */
  private pollLanes(): void {
    const now = Date.now();
    for (const [laneKey, lane] of this.lanes) {
      if (lane.busy === undefined && lane.held.length > 0 && lane.nextCheckAt <= now)
        void this.checkHead(laneKey, lane);
    }
  }

  private handOut(a: Admitted, lane: string | undefined): void {
    const d = new NatsDelivery(this, a.msg, a.message, this.topic, this.group, a.attempt, a.record, lane);
    this.outstanding.set(a.msg.seq, d);
    if (!this.active) {
      void d.release().catch(() => undefined);
      return;
    }
    try {
      const result = this.onDelivery(d);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(d, err));
    } catch (err) {
      this.handlerCrashed(d, err);
    }
  }

  private handlerCrashed(d: NatsDelivery, err: unknown): void {
    // A delivery handler must settle, not throw; keep the message and slow down.
    this.ctx.connection.report(err, `delivery handler of ${this.topic}/${this.group} threw`);
    void d.nack({ delayMs: 1000 }).catch(() => undefined);
  }

  /** `working()` for every delivery handed out or held here, so leases outlive slow handlers. */
  private renewLeases(): void {
    try {
      for (const d of this.outstanding.values()) if (!d.done) d.msg.working();
      for (const lane of this.lanes.values()) for (const a of lane.held) a.msg.working();
    } catch (err) {
      this.ctx.connection.report(err, `renew leases on ${this.topic}/${this.group}`);
    }
  }

  private async ensureConsumer(): Promise<void> {
    const { jsm, js } = this.h;
    const stream = this.ctx.broker.names.topicsStream;
    let info = await jsm.consumers.info(stream, this.durable).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (!info) {
      const latest = this.options.startFrom === 'latest';
      const last = latest ? (await jsm.streams.info(stream)).state.last_seq : 0;
      const description = consumerDescription(this.topic, this.group);
      info = await jsm.consumers
        .add(stream, {
          durable_name: this.durable,
          // The names in full, for topology() when a token is shortened to a hash.
          ...(description === undefined ? {} : { description }),
          ack_policy: AckPolicy.Explicit,
          filter_subject: `${this.ctx.broker.names.topicSubject(this.topic)}.>`,
          ack_wait: this.ctx.options.ackWaitMs * 1_000_000,
          // Herald counts attempts and dead-letters; the server never drops a message on its own.
          max_deliver: -1,
          max_ack_pending: -1,
          ...(latest
            ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: last + 1 }
            : { deliver_policy: DeliverPolicy.All }),
        })
        .catch(async (err: unknown) => {
          // Another member created it at the same moment with a different start: use theirs.
          const existing = await jsm.consumers.info(stream, this.durable).catch(() => undefined);
          if (!existing) throw err;
          return existing;
        });
    }
    this.floor = info.config.opt_start_seq ? info.config.opt_start_seq - 1 : 0;
    this.consumer = await js.consumers.get(stream, this.durable);
  }

  private recordKey(seq: number): string {
    return `${this.prefix}.${seq}`;
  }

  private maybeRetireAfter(p: Promise<void>): void {
    this.pendingSettles.add(p);
    const done = (): void => {
      this.pendingSettles.delete(p);
      this.maybeRetire();
    };
    p.then(done, done);
  }

  private maybeRetire(): void {
    if (this.active || this.outstanding.size > 0 || this.pendingSettles.size > 0) return;
    this.stopTimers();
    this.ctx.retired(this);
  }

  private stopTimers(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.poller) clearInterval(this.poller);
    this.heartbeat = undefined;
  }
}

/** One lease of one stream message. */
export class NatsDelivery implements Delivery {
  done = false;

  constructor(
    private readonly consumer: GroupConsumer,
    readonly msg: JsMsg,
    readonly message: Message,
    readonly topic: string,
    readonly group: string,
    readonly attempt: number,
    readonly record: RetryRecord | undefined,
    /** The key-order lane when this delivery holds its key. */
    readonly lane?: string,
  ) {}

  ack(): Promise<void> {
    return this.settle('a', 0);
  }

  nack(options?: { delayMs?: number }): Promise<void> {
    return this.settle('n', validateDelay(options?.delayMs));
  }

  release(): Promise<void> {
    return this.settle('r', 0);
  }

  private settle(op: 'a' | 'n' | 'r', delayMs: number): Promise<void> {
    if (this.done) return Promise.resolve();
    this.done = true;
    return this.consumer.settle(this, op, delayMs);
  }
}
