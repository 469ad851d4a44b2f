import { randomBytes } from 'node:crypto';
import { ClosedError, ConfigError } from '../../core/errors.js';
import type {
  Delivery,
  DeliveryHandler,
  GroupStats,
  Message,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  TopicTopology,
  Transport,
  TransportCapabilities,
  TransportStores,
} from '../../transport/transport.js';
import {
  scheduledTime,
  validateCancelIds,
  validateDelay,
  validateSubscribeOptions,
} from '../../transport/validate.js';
import { acquireDatabase, BUSY, type DatabaseHandle } from './database.js';
import { SqliteBusyError } from './errors.js';
import { sqliteStores } from './stores.js';
import {
  resolveTransportOptions,
  type ResolvedTransportOptions,
  type SqliteTransportOptions,
} from './options.js';
import type {
  FetchRequest,
  FetchResult,
  LeasedMessage,
  Settlement,
  SqliteTransportCounters,
} from './leases.js';
import { BrokerQueries, MAX_LEASES } from './queue.js';

/** First idle back-off step; it doubles up to `pollIntervalMs`. */
const FIRST_IDLE_MS = 5;
const RETENTION_EVERY_MS = 5_000;
const RETENTION_BATCH = 2_000;
const RENEW_BATCH = 500;
/**
 * A fetch or settle that finds the write lock held by another process retries on the next turn of
 * the event loop this many times (another process's transaction is typically done in well under
 * a millisecond), then every millisecond.
 */
const BUSY_SPINS = 8;

/**
 * Durable broker in one SQLite file: topics, consumer-group positions, leases, the retry queue.
 * Several processes on one machine may share the file; members of one group in different processes
 * share its messages. Consumers poll, adaptively: at once while there is work, backing off to
 * `pollIntervalMs` when idle; a publish or settle in this process wakes local subscribers at once.
 */
export class SqliteTransport implements Transport {
  readonly name = 'sqlite';
  readonly capabilities: TransportCapabilities = {
    persistent: true,
    distributed: true,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
    scheduledPublish: true,
  };
  /** The database file. */
  readonly path: string;

  private readonly options: ResolvedTransportOptions;
  private readonly handle: DatabaseHandle;
  private readonly queries: BrokerQueries;
  /** Prefix of this instance's lease tokens; the counter makes each fetch's token unique. */
  private readonly instanceId = randomBytes(6).toString('base64url');
  /** Every lease token of this instance starts with it, so a fetch can tell its own holds from others'. */
  private readonly holder = `${this.instanceId}.`;
  private fetches = 0;
  private readonly members = new Set<Member>();
  private readonly unsettled = new Set<SqliteDelivery>();
  private readonly topicsSeen = new Set<string>();
  /** Settlements waiting for the next flush, which applies them all in one transaction. */
  private settleQueue: SqliteDelivery[] = [];
  /** Cancels the scheduled flush of `settleQueue`, if one is scheduled. */
  private settleFlush: (() => void) | undefined;
  /** How long the settle flush has found the write lock held elsewhere. */
  private readonly settleBusy: LockWait;
  private readonly renewTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout;
  private closed = false;

  /** Validates the options (ConfigError naming the field) and opens the file (typed SqliteDatabaseError). */
  constructor(options: SqliteTransportOptions) {
    this.options = resolveTransportOptions(options);
    this.handle = acquireDatabase(this.options);
    this.path = this.handle.database.path;
    this.queries = new BrokerQueries(this.handle.database);
    this.settleBusy = new LockWait(this.queries.counters);
    this.renewTimer = setInterval(() => this.renewLeases(), Math.floor(this.options.visibilityTimeoutMs / 3));
    this.renewTimer.unref();
    this.retentionTimer = setInterval(() => this.retentionPass(), RETENTION_EVERY_MS);
    this.retentionTimer.unref();
  }

  /**
   * One transaction. With a future `deliverAt` the messages wait in `herald_scheduled` and enter
   * the log when a member's fetch finds them due (ADR 0041); local members are woken either way,
   * so they learn the due time at once.
   */
  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    this.assertOpen();
    if (typeof topic !== 'string' || topic.length === 0)
      throw new ConfigError('topic', 'must be a non-empty string');
    const now = Date.now();
    const deliverAt = scheduledTime(options, now);
    if (messages.length === 0) return;
    if (deliverAt === undefined) this.queries.publish(topic, messages, now);
    else this.queries.schedule(topic, messages, deliverAt, now);
    this.topicsSeen.add(topic);
    for (const m of this.members) if (m.topic === topic) this.wake(m);
  }

  /** Deletes scheduled messages not yet in the log; see {@link Transport.cancelScheduled}. */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    this.assertOpen();
    validateCancelIds(topic, ids);
    return ids.length === 0 ? 0 : this.queries.cancelScheduled(topic, ids);
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    this.assertOpen();
    validateSubscribeOptions(topic, options);
    const groupId = this.queries.groupId(topic, options.group, options.startFrom ?? 'earliest', Date.now());
    const topicId = this.queries.topicId(topic);
    this.topicsSeen.add(topic);
    const member = new Member(
      topic,
      topicId,
      options.group,
      groupId,
      options.prefetch,
      options.ordering !== 'none',
      onDelivery,
      new LockWait(this.queries.counters),
    );
    this.members.add(member);
    this.schedule(member, 0);
    return {
      close: async () => {
        member.active = false;
        member.cancel();
        this.members.delete(member);
        this.releaseBuffer(member);
      },
    };
  }

  /**
   * Running counts of this instance's consumer transactions: commits, lock misses and the time
   * spent retrying them, rows leased from the log and from pending rows, rows held back (and how
   * many behind another instance's lease). For diagnosing throughput, e.g. several consumer
   * processes of one group (ADR 0207); the fields may change between versions.
   */
  counters(): SqliteTransportCounters {
    return { ...this.queries.counters };
  }

  async stats(topic: string, group: string): Promise<GroupStats> {
    this.assertOpen();
    return this.queries.stats(topic, group, Date.now());
  }

  async topology(): Promise<readonly TopicTopology[]> {
    this.assertOpen();
    return this.queries.topology();
  }

  /**
   * The dead-letter and idempotency stores in the same file (one shared connection), which Herald
   * uses unless it is given others.
   */
  defaultStores(): TransportStores {
    const { path, busyTimeoutMs, synchronous } = this.options;
    return sqliteStores({ path, busyTimeoutMs, synchronous });
  }

  /**
   * Forgets a consumer group on a topic: its position and unacknowledged messages. Retention never
   * deletes what a group has not acknowledged, so a group that is gone for good must be deleted to
   * let the log shrink. Returns whether the group existed.
   */
  async deleteGroup(topic: string, group: string): Promise<boolean> {
    this.assertOpen();
    return this.queries.deleteGroup(topic, group);
  }

  /**
   * Applies retention now to every topic this instance has used (it also runs every few seconds in
   * the background). Returns how many messages were deleted.
   */
  async applyRetention(): Promise<number> {
    this.assertOpen();
    let total = 0;
    const { maxAgeMs, maxMessages } = this.options.retention;
    for (const topic of this.topicsSeen) {
      for (;;) {
        const n = this.queries.applyRetention(topic, maxAgeMs, maxMessages, Date.now(), RETENTION_BATCH);
        total += n;
        if (n < RETENTION_BATCH) break;
        await new Promise((resolve) => setImmediate(resolve)); // let deliveries through between batches
      }
    }
    return total;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.retentionTimer);
    for (const m of this.members) {
      m.active = false;
      m.cancel();
    }
    this.members.clear();
    if (this.settleFlush) {
      // Settlements made before close() land first; only what is still unsettled is released.
      this.settleFlush();
      this.flushSettlements(true);
    }
    const leases = [...this.unsettled];
    for (const d of leases) d.done = true;
    this.unsettled.clear();
    try {
      this.queries.releaseAll(leases);
    } catch (err) {
      // The leases will expire after visibilityTimeoutMs instead; nothing is lost.
      this.options.onError(err as Error);
    }
    this.handle.release();
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`SqliteTransport(${this.path})`);
  }

  private schedule(m: Member, delayMs: number): void {
    m.cancel();
    if (!m.active) return;
    if (delayMs <= 0) {
      m.immediate = setImmediate(() => {
        m.immediate = undefined;
        this.poll(m);
      });
    } else {
      m.timer = setTimeout(() => {
        m.timer = undefined;
        this.poll(m);
      }, delayMs);
    }
  }

  /** New work may be there: poll at once. */
  private wake(m: Member): void {
    m.idleMs = 0;
    if (m.immediate === undefined) this.schedule(m, 0);
  }

  /**
   * A fetch of the member's free handler slots plus its read-ahead, or undefined when it needs
   * none: its buffer is still more than half full (ADR 0206), or it has no room.
   */
  private fetchRequest(m: Member, now: number): FetchRequest | undefined {
    const buffered = m.buffered;
    if (buffered > m.readAhead >> 1) return undefined;
    // Handlers settled a whole prefetch window since the last fetch: they keep up, so read further ahead.
    if (m.settledSinceFetch >= m.prefetch && !m.keyBound && m.readAhead < this.options.bufferSize) {
      m.readAhead = Math.min(this.options.bufferSize, Math.max(m.prefetch, m.readAhead * 2));
    }
    const room = m.prefetch - m.outstanding + m.readAhead - buffered;
    if (room <= 0) return undefined;
    m.settledSinceFetch = 0;
    return {
      topicId: m.topicId,
      groupId: m.groupId,
      limit: Math.min(room, MAX_LEASES), // so one fetch transaction stays short
      byKey: m.byKey,
      token: `${this.holder}${++this.fetches}`,
      holder: this.holder,
      leaseUntil: now + this.options.visibilityTimeoutMs,
    };
  }

  private poll(m: Member): void {
    // A settle of this member is queued: its flush fetches for the member in the same transaction,
    // so a fetch of its own would only compete with it for the lock.
    if (!m.active || this.closed || m.queuedSettles > 0) return;
    const now = Date.now();
    const request = this.fetchRequest(m, now);
    if (request === undefined) return; // a settle wakes it
    let result: FetchResult | typeof BUSY;
    try {
      // A member that was idle looks before it takes the write lock; one that just found work does not.
      result = this.queries.fetch(
        request,
        now,
        m.idleMs !== 0,
        m.busy.waitedLong(now, this.options.busyTimeoutMs),
      );
    } catch (err) {
      m.busy.reset();
      this.fetchFailed(m, err);
      return;
    }
    if (result === BUSY) {
      // Another process is committing: try again shortly, with this event loop free meanwhile.
      this.schedule(m, m.busy.retryDelay(now));
      return;
    }
    m.busy.reset();
    this.fetched(m, request, result, now);
  }

  private fetchFailed(m: Member, err: unknown): void {
    // A busy file is expected under contention now and then; anything else is worth reporting.
    if (!(err instanceof SqliteBusyError)) this.options.onError(err as Error);
    this.schedule(m, this.options.pollIntervalMs);
  }

  /** Buffers what a fetch leased, hands out what fits, and decides when the member polls next. */
  private fetched(m: Member, request: FetchRequest, result: FetchResult, now: number): void {
    const { leased, nextVisibleAt } = result;
    // Rows held back behind leased ones of their key: the group's keys, not the log, bound what a
    // fetch can lease. Reading further ahead would only scan and hold back more rows per fetch
    // (and later fetches read past them), so the read-ahead gives up the shortfall and stops
    // growing until the next renewal period.
    if (result.heldByOthers !== undefined && result.heldByOthers > 0) {
      // Another process holds some of the group's keys: a read-ahead would hold more keys here
      // and make its fetches hold back (and later re-scan) more rows, which made two processes
      // slower than without read-ahead (ADR 0206). Only free slots until the next renewal period.
      m.keyBound = true;
      m.readAhead = 0;
    } else if (result.heldBack !== undefined && result.heldBack > 0) {
      m.keyBound = true;
      // Keep asking for about as many as the member holds now: the keys it just settled come back
      // to it, the others' keys do not.
      const held = m.outstanding + m.buffered + leased.length;
      if (leased.length < request.limit) m.readAhead = Math.max(0, Math.min(m.readAhead, held - m.prefetch));
    }
    for (const l of leased) {
      const d = new SqliteDelivery(this, m, l, request.token);
      this.unsettled.add(d);
      m.buffer.push(d);
    }
    try {
      this.handOut(m);
    } catch (err) {
      this.fetchFailed(m, err);
      return;
    }
    if (leased.length > 0) {
      m.idleMs = 0;
      this.schedule(m, 0);
      return;
    }
    m.idleMs = m.idleMs === 0 ? FIRST_IDLE_MS : m.idleMs * 2;
    m.idleMs = Math.min(m.idleMs, this.options.pollIntervalMs);
    const untilVisible = nextVisibleAt === undefined ? Infinity : Math.max(1, nextVisibleAt - now);
    this.schedule(m, Math.min(m.idleMs, untilVisible));
  }

  /** Hands buffered deliveries to the member's handler while it has free slots, oldest first. */
  private handOut(m: Member): void {
    while (m.outstanding < m.prefetch && m.active) {
      const d = m.take();
      if (d === undefined) return;
      m.outstanding++;
      try {
        const result = m.onDelivery(d);
        if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(d, err));
      } catch (err) {
        this.handlerCrashed(d, err);
      }
    }
  }

  /** Hands out after a settle once the current job is done: a handler never runs inside `ack()`. */
  private scheduleHandOut(m: Member): void {
    if (m.handOutScheduled || m.buffered === 0) return;
    m.handOutScheduled = true;
    queueMicrotask(() => {
      m.handOutScheduled = false;
      this.handOut(m);
    });
  }

  /**
   * Gives a member's buffered (never handed out) deliveries back to the group, uncounted, when its
   * subscription closes.
   */
  private releaseBuffer(m: Member): void {
    const buffered = m.drain();
    if (buffered.length === 0 || this.closed) return;
    for (const d of buffered) {
      d.done = true;
      this.unsettled.delete(d);
    }
    try {
      this.queries.releaseAll(buffered);
    } catch (err) {
      // The leases expire after visibilityTimeoutMs instead (counted as an attempt); nothing is lost.
      this.options.onError(err as Error);
    }
  }

  private handlerCrashed(d: SqliteDelivery, err: unknown): void {
    // A delivery handler must settle, not throw; keep the message and slow its redelivery down.
    process.emitWarning(`sqlite transport: delivery handler threw: ${String(err)}`);
    d.nack({ delayMs: 1000 }).catch((e: unknown) => this.options.onError(e as Error));
  }

  /**
   * Called by SqliteDelivery; settles once, and never after close(). Settlements made in one turn of
   * the event loop are applied together in one transaction, so acks cost one commit per batch.
   */
  settle(d: SqliteDelivery, how: 'ack' | 'nack' | 'release', delayMs: number): Promise<void> {
    if (d.done || d.settling || this.closed) return Promise.resolve();
    d.settling = true;
    // The handler is done with it: its slot is free now, not when the settle commits, so buffered
    // deliveries keep the handlers busy while this settle waits for the batch or the lock (ADR 0206).
    const m = d.member;
    if (this.unsettled.has(d)) m.outstanding--; // not again for a settle retried after a failed one
    m.queuedSettles++;
    m.settledSinceFetch++;
    m.settledSinceRenew++;
    this.scheduleHandOut(m);
    // The delivery is its own settlement record: no object per settle beyond the promise.
    d.how = how;
    d.visibleAt = how === 'nack' ? Date.now() + delayMs : 0;
    return new Promise<void>((resolve, reject) => {
      d.resolveSettle = resolve;
      d.rejectSettle = reject;
      this.settleQueue.push(d);
      this.scheduleFlush(0);
    });
  }

  private scheduleFlush(delayMs: number): void {
    if (this.settleFlush) return;
    if (delayMs === 0) {
      const immediate = setImmediate(() => this.flushSettlements());
      this.settleFlush = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(() => this.flushSettlements(), delayMs);
      this.settleFlush = () => clearTimeout(timer);
    }
  }

  private flushSettlements(closing = false): void {
    this.settleFlush = undefined;
    const batch = this.settleQueue;
    this.settleQueue = [];
    if (this.closed && !closing) {
      // close() already returned these leases to their groups.
      for (const d of batch) d.resolveSettle();
      return;
    }
    // Settling frees prefetch slots and may unblock a key (or make a nacked message visible again):
    // the members of the settled groups fetch in the same transaction (group commit).
    const now = Date.now();
    const fetches: { member: Member; request: FetchRequest }[] = [];
    if (!closing) {
      const groups = new Set<number>();
      for (const d of batch) groups.add(d.groupId);
      for (const m of this.members) {
        if (!m.active || !groups.has(m.groupId)) continue;
        const request = this.fetchRequest(m, now);
        if (request) fetches.push({ member: m, request });
      }
    }
    let result: { fetched: FetchResult[] } | typeof BUSY;
    try {
      // A settle whose lease expired and was taken over matches no row: the new holder is left alone.
      result = this.queries.settleAndFetch(
        batch,
        fetches.map((f) => f.request),
        now,
        closing || this.settleBusy.waitedLong(now, this.options.busyTimeoutMs),
      );
    } catch (err) {
      this.settleBusy.reset();
      // Not settled: the lease is no longer renewed (renewing it would keep the message here
      // forever), so it may be settled again until it expires, and then returns to its group as
      // after a crash (ADR 0042). Its slot stays free.
      for (const d of batch) {
        d.settling = false;
        d.member.queuedSettles--;
        this.unsettled.delete(d);
        d.rejectSettle(err);
      }
      for (const { member } of fetches) this.fetchFailed(member, err);
      return;
    }
    if (result === BUSY) {
      // Another process is committing: keep the batch (settles made meanwhile join it) and retry shortly.
      this.settleQueue = batch.concat(this.settleQueue);
      this.scheduleFlush(this.settleBusy.retryDelay(now));
      return;
    }
    this.settleBusy.reset();
    const { fetched } = result;
    for (const d of batch) {
      d.done = true;
      d.member.queuedSettles--;
      this.unsettled.delete(d);
      d.resolveSettle();
    }
    for (let i = 0; i < fetches.length; i++)
      this.fetched(fetches[i]!.member, fetches[i]!.request, fetched[i]!, now);
  }

  private renewLeases(): void {
    for (const m of this.members) {
      // A renewal period without a settle: the handlers stalled, so stop reading ahead of them.
      if (m.settledSinceRenew === 0) m.readAhead = 0;
      m.settledSinceRenew = 0;
      m.keyBound = false;
    }
    if (this.unsettled.size === 0) return;
    const leases = [...this.unsettled];
    try {
      for (let i = 0; i < leases.length; i += RENEW_BATCH) {
        const chunk = leases.slice(i, i + RENEW_BATCH);
        const lost = this.queries.renew(chunk, Date.now() + this.options.visibilityTimeoutMs);
        // Taken over by another member while this process stalled: a buffered one must not reach a
        // handler (its settle would be a no-op anyway); a handed-out one is its handler's to finish.
        for (const j of lost) {
          const d = chunk[j]!;
          if (d.member.discard(d)) {
            d.done = true;
            this.unsettled.delete(d);
          }
        }
      }
    } catch (err) {
      this.options.onError(err as Error);
    }
  }

  private retentionPass(): void {
    if (this.closed) return;
    this.applyRetention().catch((err: unknown) => this.options.onError(err as Error));
  }
}

/**
 * Retries of a transaction that found the write lock held by another connection: on the next turns
 * first, then every millisecond, and after `busyTimeoutMs` by waiting in SQLite's busy handler,
 * which throws SqliteBusyError when the lock stays held (ADR 0205).
 */
class LockWait {
  private since: number | undefined;
  private tries = 0;

  constructor(private readonly counters: SqliteTransportCounters) {}

  /** Delay before the next try, counting this one. */
  retryDelay(now: number): number {
    this.since ??= now;
    return ++this.tries <= BUSY_SPINS ? 0 : 1;
  }

  /** True once retries have gone on for `timeoutMs`: the next try waits for the lock. */
  waitedLong(now: number, timeoutMs: number): boolean {
    return this.since !== undefined && now - this.since >= timeoutMs;
  }

  reset(): void {
    if (this.since !== undefined) this.counters.lockWaitMs += Date.now() - this.since;
    this.since = undefined;
    this.tries = 0;
  }
}

/** One subscription of this process: a member of a consumer group. */
class Member {
  /** Handed to the handler and not yet settled by it (a settle frees the slot when it is made). */
  outstanding = 0;
  /** Settles made and not yet committed (or failed). */
  queuedSettles = 0;
  active = true;
  idleMs = 0;
  /** Leased and not yet handed out, oldest first from `head` (ADR 0206). */
  buffer: SqliteDelivery[] = [];
  private head = 0;
  /** How many leases beyond the free handler slots a fetch takes; grows while handlers keep up. */
  readAhead = 0;
  settledSinceFetch = 0;
  settledSinceRenew = 0;
  /** A fetch in this renewal period held rows back behind leased ones of their key (ordering by key). */
  keyBound = false;
  handOutScheduled = false;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;

  constructor(
    readonly topic: string,
    readonly topicId: number,
    readonly group: string,
    readonly groupId: number,
    readonly prefetch: number,
    readonly byKey: boolean,
    readonly onDelivery: DeliveryHandler,
    /** How long this member's fetch has found the write lock held elsewhere. */
    readonly busy: LockWait,
  ) {}

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  get buffered(): number {
    return this.buffer.length - this.head;
  }

  /** The oldest buffered delivery still to hand out, if any. */
  take(): SqliteDelivery | undefined {
    while (this.head < this.buffer.length) {
      const d = this.buffer[this.head]!;
      this.buffer[this.head++] = undefined as unknown as SqliteDelivery;
      if (this.head === this.buffer.length) {
        this.buffer = [];
        this.head = 0;
      }
      if (!d.done) return d;
    }
    return undefined;
  }

  /** Removes a delivery from the buffer; false when it is not there (already handed out). */
  discard(d: SqliteDelivery): boolean {
    const i = this.buffer.indexOf(d, this.head);
    if (i < 0) return false;
    this.buffer.splice(i, 1);
    return true;
  }

  /** Empties the buffer, returning what was in it. */
  drain(): SqliteDelivery[] {
    const rest = this.buffer.slice(this.head).filter((d) => !d.done);
    this.buffer = [];
    this.head = 0;
    return rest;
  }
}

class SqliteDelivery implements Delivery, Settlement {
  done = false;
  settling = false;
  /** The settle being made (set by `settle()`), read by the flush that applies it. */
  how: 'ack' | 'nack' | 'release' = 'ack';
  visibleAt = 0;
  resolveSettle: () => void = noop;
  rejectSettle: (e: unknown) => void = noop;
  readonly message: Message;
  readonly attempt: number;
  readonly seq: number;
  readonly groupId: number;
  readonly topic: string;
  readonly group: string;

  constructor(
    private readonly transport: SqliteTransport,
    readonly member: Member,
    leased: LeasedMessage,
    readonly token: string,
  ) {
    this.message = leased.message;
    this.attempt = leased.attempt;
    this.seq = leased.seq;
    this.groupId = member.groupId;
    this.topic = member.topic;
    this.group = member.group;
  }

  ack(): Promise<void> {
    return this.transport.settle(this, 'ack', 0);
  }

  async nack(options?: { delayMs?: number }): Promise<void> {
    return this.transport.settle(this, 'nack', validateDelay(options?.delayMs));
  }

  release(): Promise<void> {
    return this.transport.settle(this, 'release', 0);
  }
}

function noop(): void {}

/** Creates the SQLite transport: `sqlite({ path: '.herald/events.db' })`. */
export function sqlite(options: SqliteTransportOptions): SqliteTransport {
  return new SqliteTransport(options);
}
