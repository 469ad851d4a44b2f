import { ClosedError } from '../contracts/errors.js';
import type {
  Delivery,
  DeliveryHandler,
  GroupStats,
  Message,
  Ordering,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportCapabilities,
  TopicTopology,
} from './transport.js';
import { scheduledTime, validateCancelIds, validateDelay, validateSubscribeOptions } from './validate.js';

export interface MemoryTransportOptions {
  /**
   * Messages kept for a topic nobody subscribes to yet (oldest dropped first). Messages a group has
   * not settled are never dropped. Default 100 000.
   */
  readonly maxRetained?: number;
}

/**
 * In-process transport with the full delivery semantics (groups, per-key order, delayed
 * redelivery, scheduled publish, leases released on close). For tests, demos and single-process
 * apps; nothing survives the process, scheduled messages included.
 */
export class MemoryTransport implements Transport {
  readonly name = 'memory';
  readonly capabilities: TransportCapabilities = {
    persistent: false,
    distributed: false,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
    scheduledPublish: true,
  };

  private readonly topics = new Map<string, TopicLog>();
  private readonly maxRetained: number;
  private closed = false;

  constructor(options: MemoryTransportOptions = {}) {
    this.maxRetained = options.maxRetained ?? 100_000;
  }

  publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    // Not async: the work is synchronous, so the answer is the one resolved promise (or a
    // rejection), not a new promise per call.
    try {
      this.append(topic, messages, options);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private append(topic: string, messages: readonly Message[], options: PublishOptions | undefined): void {
    if (this.closed) throw new ClosedError('MemoryTransport');
    const deliverAt = options === undefined ? undefined : scheduledTime(options, Date.now());
    const log = this.log(topic);
    if (deliverAt !== undefined) {
      log.schedule(messages.map(copyMessage), deliverAt);
      return;
    }
    for (let i = 0; i < messages.length; i++) log.append(copyMessage(messages[i]!));
    log.compact(this.maxRetained);
    log.wake();
  }

  /** Removes scheduled messages that have not come due; see {@link Transport.cancelScheduled}. */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    if (this.closed) throw new ClosedError('MemoryTransport');
    validateCancelIds(topic, ids);
    return this.topics.get(topic)?.cancel(ids) ?? 0;
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    if (this.closed) throw new ClosedError('MemoryTransport');
    validateSubscribeOptions(topic, options);
    const group = this.log(topic).group(options);
    const member = group.join(options.prefetch, onDelivery);
    return { close: async () => group.leave(member) };
  }

  async stats(topic: string, group: string): Promise<GroupStats> {
    return this.topics.get(topic)?.stats(group) ?? { lag: 0, scheduled: 0, inFlight: 0, delayed: 0 };
  }

  async topology(): Promise<readonly TopicTopology[]> {
    return [...this.topics.values()].map((t) => ({ topic: t.topic, groups: t.groupNames() }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const log of this.topics.values()) log.close();
  }

  private log(topic: string): TopicLog {
    let log = this.topics.get(topic);
    if (!log) {
      log = new TopicLog(topic);
      this.topics.set(topic, log);
    }
    return log;
  }
}

/** Copied so a caller reusing its buffers cannot change what consumers see. */
function copyMessage(m: Message): Message {
  return {
    id: m.id,
    key: m.key,
    headers: { ...m.headers },
    // An ArrayBuffer of its own, not a slice of a shared pool: a message kept for long (a backlog,
    // a scheduled one) would pin the whole pool block and the other bodies in it. The constructor
    // rather than slice(): it always copies into a plain Uint8Array (a Buffer's slice() is a view
    // of the caller's memory), and it skips slice's species lookup (ADR 0012).
    body: new Uint8Array(m.body),
  };
}

const RESOLVED: Promise<void> = Promise.resolve();

class TopicLog {
  /** messages[i] has offset base + i; offsets below base were compacted away. */
  private messages: Message[] = [];
  private base = 0;
  private readonly groups = new Map<string, GroupState>();
  /**
   * Messages published with a future `deliverAt`, by id (rescheduling an id replaces it), in the
   * order they were scheduled. They enter the log when due, so they hold back no key before then.
   */
  private readonly scheduled = new Map<string, { readonly message: Message; readonly dueAt: number }>();
  private scheduleTimer: NodeJS.Timeout | undefined;
  private scheduleTimerAt = Infinity;

  constructor(readonly topic: string) {}

  get end(): number {
    return this.base + this.messages.length;
  }

  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  append(message: Message): void {
    this.messages.push(message);
  }

  at(offset: number): Message {
    return this.messages[offset - this.base]!;
  }

  group(options: SubscribeOptions): GroupState {
    let g = this.groups.get(options.group);
    if (!g) {
      const start = options.startFrom === 'latest' ? this.end : this.base;
      g = new GroupState(this, options.group, options.ordering ?? 'key', start);
      this.groups.set(options.group, g);
    }
    return g;
  }

  wake(): void {
    for (const g of this.groups.values()) g.schedulePump();
  }

  schedule(messages: readonly Message[], dueAt: number): void {
    for (const m of messages) {
      this.scheduled.delete(m.id);
      this.scheduled.set(m.id, { message: m, dueAt });
    }
    this.armSchedule();
  }

  /** Synchronous, so a cancel and the due time's move never interleave: one of them wins. */
  cancel(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) if (this.scheduled.delete(id)) n++;
    this.armSchedule();
    return n;
  }

  /** Appends the scheduled messages that are due, earliest first (ties in scheduling order). */
  private moveDue(): void {
    const now = Date.now();
    const due = [...this.scheduled.values()].filter((s) => s.dueAt <= now);
    if (due.length > 0) {
      due.sort((a, b) => a.dueAt - b.dueAt); // stable: equal times keep their scheduling order
      for (const s of due) {
        this.scheduled.delete(s.message.id);
        this.append(s.message);
      }
      this.wake();
    }
    this.armSchedule();
  }

  private armSchedule(): void {
    let next = Infinity;
    for (const s of this.scheduled.values()) if (s.dueAt < next) next = s.dueAt;
    if (next === this.scheduleTimerAt) return;
    if (this.scheduleTimer) clearTimeout(this.scheduleTimer);
    this.scheduleTimer = undefined;
    this.scheduleTimerAt = next;
    if (next === Infinity) return;
    this.scheduleTimer = setTimeout(
      () => {
        this.scheduleTimer = undefined;
        this.scheduleTimerAt = Infinity;
        this.moveDue();
      },
      Math.max(0, next - Date.now()),
    );
  }

  /** Drops messages every group has settled (or, with no groups, beyond the retention cap). */
  compact(maxRetained: number): void {
    if (this.messages.length < 1024) return;
    let low = this.groups.size === 0 ? this.end - maxRetained : Infinity;
    for (const g of this.groups.values()) low = Math.min(low, g.lowWatermark());
    const drop = Math.min(low, this.end) - this.base;
    if (drop > this.messages.length / 2) {
      this.messages = this.messages.slice(drop);
      this.base += drop;
    }
  }

  stats(group: string): GroupStats {
    const scheduled = this.scheduled.size;
    const g = this.groups.get(group);
    return g
      ? { ...g.stats(), scheduled }
      : { lag: this.end - this.base, scheduled, inFlight: 0, delayed: 0 };
  }

  close(): void {
    for (const g of this.groups.values()) g.close();
    if (this.scheduleTimer) clearTimeout(this.scheduleTimer);
    this.scheduleTimer = undefined;
  }
}

interface Member {
  readonly prefetch: number;
  readonly onDelivery: DeliveryHandler;
  /** Deliveries handed to this member and not yet settled. */
  outstanding: number;
  active: boolean;
}

/** Delivery state of one consumer group on one topic. */
class GroupState {
  private cursor: number;
  /** Offsets deliverable now, in the order they became so. Each holds its key's lock. */
  private readonly ready: number[] = [];
  /** Nacked offsets waiting for their time, sorted by dueAt. Each holds its key's lock. */
  private readonly delayed: { offset: number; dueAt: number }[] = [];
  /**
   * The busy keys (a delivery of theirs is unsettled or waiting for redelivery), each with the
   * offsets the cursor passed while it was busy, in publish order (null: none). One map for both,
   * so taking and freeing a key is one lookup.
   */
  private readonly busyKeys = new Map<string, number[] | null>();
  /**
   * Deliveries so far of offsets that were nacked or released (the attempt of their next delivery
   * is one more). A first delivery is not recorded: its attempt is on the delivery, and most
   * messages are acked at once, so the map stays empty instead of taking a write and a delete per
   * message.
   */
  private readonly attempts = new Map<number, number>();
  /**
   * Deliveries handed out and not settled, oldest first: a list linked through the deliveries
   * rather than a Set, so a delivery costs no hashing and no table to grow, shrink and rehash.
   */
  private unsettledHead: MemoryDelivery | undefined;
  private unsettledTail: MemoryDelivery | undefined;
  private unsettledCount = 0;
  private readonly members: Member[] = [];
  private nextMember = 0;
  private pumpScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = Infinity;

  constructor(
    private readonly log: TopicLog,
    readonly name: string,
    private readonly ordering: Ordering,
    start: number,
  ) {
    this.cursor = start;
  }

  join(prefetch: number, onDelivery: DeliveryHandler): Member {
    const member: Member = { prefetch, onDelivery, outstanding: 0, active: true };
    this.members.push(member);
    this.schedulePump();
    return member;
  }

  leave(member: Member): void {
    if (!member.active) return;
    member.active = false;
    this.members.splice(this.members.indexOf(member), 1);
    if (this.members.length === 0) this.clearTimer();
  }

  /** Transport shutdown: members leave and unsettled deliveries return to the group, uncounted. */
  close(): void {
    for (const m of [...this.members]) this.leave(m);
    for (const d of this.unsettledList()) d.settle('release', 0);
  }

  private unsettledList(): MemoryDelivery[] {
    const list: MemoryDelivery[] = [];
    for (let d = this.unsettledHead; d !== undefined; d = d.nextUnsettled) list.push(d);
    return list;
  }

  lowWatermark(): number {
    let low = this.cursor;
    for (const o of this.ready) low = Math.min(low, o);
    for (const d of this.delayed) low = Math.min(low, d.offset);
    for (let d = this.unsettledHead; d !== undefined; d = d.nextUnsettled) low = Math.min(low, d.offset);
    for (const q of this.busyKeys.values()) if (q !== null) low = Math.min(low, q[0] ?? Infinity);
    return low;
  }

  stats(): GroupStats {
    let held = 0;
    for (const q of this.busyKeys.values()) if (q !== null) held += q.length;
    return {
      lag: this.log.end - this.cursor + this.ready.length + held,
      inFlight: this.unsettledCount,
      delayed: this.delayed.length,
    };
  }

  schedulePump(): void {
    if (this.pumpScheduled || this.members.length === 0) return;
    this.pumpScheduled = true;
    // Batch the work of many publishes/settlements into one pass, off the caller's stack.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    const now = Date.now();
    this.promoteDue(now);
    for (;;) {
      const member = this.memberWithCapacity();
      if (!member) break;
      const offset = this.next();
      if (offset === undefined) break;
      this.deliver(member, offset);
    }
    this.armTimer();
  }

  private memberWithCapacity(): Member | undefined {
    const n = this.members.length;
    for (let i = 0; i < n; i++) {
      const m = this.members[(this.nextMember + i) % n]!;
      if (m.outstanding < m.prefetch) {
        this.nextMember = (this.nextMember + i + 1) % n;
        return m;
      }
    }
    return undefined;
  }

  private next(): number | undefined {
    if (this.ready.length > 0) return this.ready.shift();
    while (this.cursor < this.log.end) {
      const offset = this.cursor++;
      const key = this.keyOf(offset);
      if (key === undefined) return offset;
      const held = this.busyKeys.get(key);
      if (held === undefined) {
        this.busyKeys.set(key, null);
        return offset;
      }
      if (held === null) this.busyKeys.set(key, [offset]);
      else held.push(offset);
    }
    return undefined;
  }

  private keyOf(offset: number): string | undefined {
    return this.ordering === 'key' ? this.log.at(offset).key : undefined;
  }

  private deliver(member: Member, offset: number): void {
    const attempt = (this.attempts.size === 0 ? 0 : (this.attempts.get(offset) ?? 0)) + 1;
    const delivery = new MemoryDelivery(this, member, offset, this.log.at(offset), this.log.topic, attempt);
    delivery.prevUnsettled = this.unsettledTail;
    if (this.unsettledTail === undefined) this.unsettledHead = delivery;
    else this.unsettledTail.nextUnsettled = delivery;
    this.unsettledTail = delivery;
    this.unsettledCount++;
    member.outstanding++;
    try {
      const result = member.onDelivery(delivery);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(delivery, err));
    } catch (err) {
      this.handlerCrashed(delivery, err);
    }
  }

  private handlerCrashed(delivery: MemoryDelivery, err: unknown): void {
    // A delivery handler must settle, not throw; keep the message and slow the loop down.
    process.emitWarning(`memory transport: delivery handler threw: ${String(err)}`);
    delivery.settle('nack', 1000);
  }

  /** Called exactly once per delivery by MemoryDelivery. */
  settled(member: Member, delivery: MemoryDelivery, how: 'ack' | 'nack' | 'release', delayMs: number): void {
    member.outstanding--;
    const { prevUnsettled: prev, nextUnsettled: next } = delivery;
    if (prev === undefined) this.unsettledHead = next;
    else prev.nextUnsettled = next;
    if (next === undefined) this.unsettledTail = prev;
    else next.prevUnsettled = prev;
    delivery.prevUnsettled = delivery.nextUnsettled = undefined;
    this.unsettledCount--;
    const offset = delivery.offset;
    if (how === 'ack') {
      if (this.attempts.size > 0) this.attempts.delete(offset);
      this.unlockKey(offset);
      this.schedulePump();
      return;
    }
    if (how === 'release') {
      // Not counted: the next delivery has the attempt this one had.
      if (delivery.attempt > 1) this.attempts.set(offset, delivery.attempt - 1);
      else this.attempts.delete(offset);
      this.ready.unshift(offset);
      this.schedulePump();
      return;
    }
    this.attempts.set(offset, delivery.attempt);
    if (delayMs > 0) {
      const dueAt = Date.now() + delayMs;
      let i = this.delayed.length;
      while (i > 0 && this.delayed[i - 1]!.dueAt > dueAt) i--;
      this.delayed.splice(i, 0, { offset, dueAt });
    } else {
      this.ready.push(offset);
    }
    this.schedulePump();
  }

  private unlockKey(offset: number): void {
    const key = this.keyOf(offset);
    if (key === undefined) return;
    const held = this.busyKeys.get(key);
    const nextOffset = held?.shift();
    if (nextOffset === undefined) {
      this.busyKeys.delete(key);
    } else {
      if (held!.length === 0) this.busyKeys.set(key, null);
      this.ready.push(nextOffset); // inherits the key's lock
    }
  }

  private promoteDue(now: number): void {
    while (this.delayed.length > 0 && this.delayed[0]!.dueAt <= now)
      this.ready.push(this.delayed.shift()!.offset);
  }

  private armTimer(): void {
    const dueAt = this.delayed[0]?.dueAt ?? Infinity;
    if (dueAt === this.timerDueAt) return;
    this.clearTimer();
    if (dueAt === Infinity || this.members.length === 0) return;
    this.timerDueAt = dueAt;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerDueAt = Infinity;
        this.schedulePump();
      },
      Math.max(0, dueAt - Date.now()),
    );
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueAt = Infinity;
  }
}

class MemoryDelivery implements Delivery {
  readonly group: string;
  private done = false;
  /** Neighbours in the group's list of unsettled deliveries. */
  prevUnsettled: MemoryDelivery | undefined = undefined;
  nextUnsettled: MemoryDelivery | undefined = undefined;

  constructor(
    private readonly state: GroupState,
    private readonly member: Member,
    readonly offset: number,
    readonly message: Message,
    readonly topic: string,
    readonly attempt: number,
  ) {
    this.group = state.name;
  }

  settle(how: 'ack' | 'nack' | 'release', delayMs: number): void {
    // A late settle of a delivery already released by close() is a no-op: it belongs to the group again.
    if (this.done) return;
    this.done = true;
    this.state.settled(this.member, this, how, delayMs);
  }

  // Not async, like publish: settling is synchronous, so no promise is made per call.
  ack(): Promise<void> {
    return this.settleNow('ack');
  }

  nack(options?: { delayMs?: number }): Promise<void> {
    return this.settleNow('nack', options?.delayMs);
  }

  release(): Promise<void> {
    return this.settleNow('release');
  }

  /** A bad delay or a settle that throws rejects the call rather than throwing from it. */
  private settleNow(how: 'ack' | 'nack' | 'release', delayMs?: number): Promise<void> {
    try {
      this.settle(how, how === 'nack' ? validateDelay(delayMs) : 0);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}
