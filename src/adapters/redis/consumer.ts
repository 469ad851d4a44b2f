import { toError } from '../../core/errors.js';
import type {
  Delivery,
  DeliveryHandler,
  Message,
  SubscribeOptions,
  Subscription,
} from '../../transport/transport.js';
import { validateDelay } from '../../transport/validate.js';
import { decodeEntry, decodeFields, itemsOf } from './codec.js';
import type { Connections, RedisClient } from './connection.js';
import type { GroupKeys } from './keys.js';
import type { ResolvedTransportOptions } from './options.js';
import type { Scripts } from './scripts.js';

/** What a consumer needs from its transport. */
export interface ConsumerContext {
  readonly connections: Connections;
  readonly scripts: Scripts;
  readonly options: ResolvedTransportOptions;
  /** Called once the consumer is closed and holds no delivery any more. */
  readonly retired: (consumer: GroupConsumer) => void;
}

type Op = 'a' | 'n' | 'r';

interface PendingSettle {
  readonly op: Op;
  readonly delivery: RedisDelivery;
  readonly delayMs: number;
}

/**
 * Settles that leave in one call. They succeed or fail together, so they share one promise: one
 * promise per call, not one (with its resolve and reject closures) per delivery.
 */
interface SettleBatch {
  readonly ops: PendingSettle[];
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

function newBatch(): SettleBatch {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { ops: [], done, resolve, reject };
}

/** Most operations sent in one settle script call. */
const SETTLE_CHUNK = 1000;
/**
 * A fetch of which more than one entry in FOLLOWER_SHARE came back as a follower shrinks the
 * read-ahead. Measured (ADR 0312): a quarter of followers costs about what the larger batches save.
 */
const FOLLOWER_SHARE = 4;
/**
 * The read-ahead bound when `bufferSize` is not set, per ordering. By key, larger windows repeat keys
 * and followers cost more than the round trips saved (ADR 0312); with ordering none there are no
 * followers and Redis's cost per message keeps falling with the batch (ADR 0313).
 */
const DEFAULT_READ_AHEAD = { key: 64, none: 512 } as const;
/**
 * A read-ahead whose upper half took longer than this to reach the handlers is halved; it may grow
 * only while a half takes less than half of this. Read-ahead is there to hide a fetch round trip
 * (milliseconds); a half that lasts longer than this holds hundreds of round trips of work and only
 * keeps entries from idle members of the group (ADR 0314).
 */
const SLOW_DRAIN_MS = 250;
/** Complete reclaim scans between two sweeps of consumers left behind by crashed processes. */
const SWEEP_EVERY_CYCLES = 20;

let consumerSeq = 0;

/**
 * One member of a consumer group: a loop that fetches messages in batches into a local buffer
 * (bounded by `bufferSize` beyond the `prefetch` handler slots, so memory stays bounded and the rest
 * of the backlog stays in Redis), hands them out as handler slots free, and blocks on the stream when
 * there is nothing to do. Buffered entries are leases like handed-out ones: in this consumer's PEL
 * and renewed while it lives (ADR 0304). Settlements are coalesced: one call in flight per consumer,
 * everything settled meanwhile goes in the next one (ADR 0305).
 */
export class GroupConsumer implements Subscription {
  /** Consumer name in the Redis group; unique per subscription. */
  readonly name: string;
  /** Handed out to the handler and not yet settled. */
  private readonly outstanding = new Map<string, RedisDelivery>();
  /** Fetched (leased to this consumer) and waiting for a free handler slot, oldest first from `bufferHead`. */
  private buffer: RedisDelivery[] = [];
  private bufferHead = 0;
  /**
   * Followers (ADR 0305): fetched entries whose key's holder this consumer has; per key, oldest first.
   * Each is handed out when the ack of the one before it passes the key to it.
   */
  private readonly followers = new Map<string, RedisDelivery[]>();
  private followerCount = 0;
  /** Order in which fetch and settle calls were sent (Redis runs them, and replies, in that order). */
  private callSeq = 0;
  private fetchInFlight: { readonly seq: number; readonly applied: Promise<void> } | undefined;
  private dispatchScheduled = false;
  private dispatching = false;
  /**
   * How many entries may be fetched beyond the free handler slots: 0 until the handlers have settled
   * a whole `prefetch` window between two fetches, then doubling up to `readAheadLimit` while halves
   * of the buffer drain fast and halving when one drains slowly (SLOW_DRAIN_MS); halved after a
   * fetch that was mostly followers (FOLLOWER_SHARE); back to 0 when a renewal period passes without
   * a settle. A stuck or slow consumer so never takes more than `prefetch` entries out of Redis (the
   * backlog stays with the group, visible as lag, for other members); a consumer keeping up fetches
   * in large batches.
   */
  private readAhead = 0;
  /** `bufferSize`, or the ordering's default. */
  private readonly readAheadLimit: number;
  private settledSinceFetch = 0;
  /** The last fetch was mostly followers: the read-ahead does not grow (see FOLLOWER_SHARE). */
  private followerHeavy = false;
  /** When a fetch left the buffer above half its read-ahead (see SLOW_DRAIN_MS); 0: it did not. */
  private aboveHalfSince = 0;
  /**
   * Since the last growth step, the buffer's upper half reached the handlers within half of
   * SLOW_DRAIN_MS (or a fetch left it at or below half): a doubled read-ahead would still drain in
   * time, so it may grow one step (see growReadAhead).
   */
  private halfDrainedFast = false;
  private settledSinceRenew = 0;
  private readonly ordering: 'key' | 'none';
  private active = true;
  private released = false;
  private loopDone: Promise<void> = Promise.resolve();
  private blocking: RedisClient | undefined;
  private wakeUp: (() => void) | undefined;
  private cursor = '0-0';
  /** The last fetch script handed out reclaimed, retried or released entries (see the loop's plainRead). */
  private scriptHandedOut = false;
  /** The last plain read filled its room (see fetch: the script skips its idle step then). */
  private backlog = false;
  private nextReclaimAt = 0;
  private reclaimCycles = 0;
  /** Settles not sent yet, in batches of at most SETTLE_CHUNK; never an empty batch. */
  private queue: SettleBatch[] = [];
  private flushScheduled = false;
  private readonly flushes = new Set<Promise<void>>();
  /** Settles carried by the fetch call in flight (see takeForFetch). */
  private carriedFlush: { readonly flush: Promise<void>; readonly done: () => void } | undefined;
  private sending = false;
  private renewTimer: NodeJS.Timeout | undefined;
  private dueTimes: number[] = [];
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeTimerAt = 0;
  private readonly renewEveryMs: number;
  private readonly reclaimEveryMs: number;

  constructor(
    private readonly ctx: ConsumerContext,
    readonly topic: string,
    private readonly keys: GroupKeys,
    private readonly options: SubscribeOptions,
    private readonly onDelivery: DeliveryHandler,
  ) {
    this.name = `${process.pid}-${Date.now().toString(36)}-${(consumerSeq++).toString(36)}`;
    this.ordering = options.ordering ?? 'key';
    this.readAheadLimit = ctx.options.bufferSize ?? DEFAULT_READ_AHEAD[this.ordering];
    const idle = ctx.options.claimIdleMs;
    this.renewEveryMs = Math.max(5, Math.floor(idle / 3));
    this.reclaimEveryMs = Math.min(Math.max(10, Math.floor(idle / 2)), 5_000);
  }

  get group(): string {
    return this.options.group;
  }

  /** Creates the group if needed and starts the fetch loop. */
  async start(): Promise<void> {
    await this.ensureGroup();
    this.blocking = this.ctx.connections.duplicate();
    this.renewTimer = setInterval(() => this.renewLeases(), this.renewEveryMs);
    this.renewTimer.unref();
    this.loopDone = this.loop();
  }

  /** Stops fetching; handed-out deliveries stay settle-able (their leases keep being renewed). */
  async close(): Promise<void> {
    if (!this.active) return this.loopDone;
    this.active = false;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.dueTimes = [];
    this.wake();
    if (this.blocking) this.ctx.connections.drop(this.blocking); // interrupts a blocked XREAD
    this.blocking = undefined;
    await this.loopDone;
    this.releaseBuffered();
    this.maybeRetire();
  }

  /**
   * Gives buffered (never handed out) entries back to the group, uncounted. Newest first: each goes
   * to the front of the ready list, so the oldest ends up first in line.
   */
  private releaseBuffered(): void {
    const waiting = this.buffer.slice(this.bufferHead);
    this.buffer = [];
    this.bufferHead = 0;
    for (let i = waiting.length - 1; i >= 0; i--) void waiting[i]!.release().catch(() => undefined);
  }

  /** Entries fetched and waiting for a handler slot. */
  private get buffered(): number {
    return this.buffer.length - this.bufferHead;
  }

  /** More is buffered than half the read-ahead: the loop does not refill yet (fetches stay large). */
  private get aboveRefillLevel(): boolean {
    return this.buffered > Math.floor(this.readAhead / 2);
  }

  /** Entries fetched and not handed out: buffered ones and followers. */
  private get waiting(): number {
    return this.buffered + this.followerCount;
  }

  /** Transport shutdown: every unsettled delivery goes back to the group, uncounted; later settles are no-ops. */
  async releaseAll(): Promise<void> {
    await this.close();
    for (const d of this.outstanding.values()) {
      d.done = true;
      this.enqueue('r', d, 0).catch(() => undefined); // reported by flush; the lease expires anyway
    }
    this.outstanding.clear();
    this.released = true;
    this.stopRenewing();
    this.flushNow();
    while (this.flushes.size > 0) await Promise.allSettled([...this.flushes]);
    await this.ctx.scripts.forgetConsumer(this.keys.stream, this.group, this.name).catch(() => undefined);
  }

  /** Called once per delivery by RedisDelivery. */
  settle(delivery: RedisDelivery, op: Op, delayMs: number): Promise<void> {
    if (this.outstanding.delete(delivery.streamId)) {
      this.settledSinceFetch++;
      this.settledSinceRenew++;
      this.scheduleDispatch();
    }
    this.wake();
    const sent = this.released ? Promise.resolve() : this.enqueue(op, delivery, delayMs);
    if (op === 'n' && delayMs > 0 && !this.released)
      sent.then(() => this.wakeAt(Date.now() + delayMs)).catch(() => undefined);
    this.maybeRetire();
    return sent;
  }

  /**
   * A blocked XREAD does not return when a delayed retry comes due (the retry queue is a sorted
   * set, not a stream), and the block started before the retry was scheduled could last up to
   * `blockMs`. So the member that scheduled it bumps the group's wake stream at the due time:
   * every member blocked on the group (in any process) fetches at once. One timer, for the
   * earliest due time.
   */
  private wakeAt(dueAt: number): void {
    if (!this.active) return;
    this.dueTimes.push(dueAt);
    this.armWakeTimer();
  }

  /** {@link wakeAt} unless a wake-up is already set for about that time (the loop sees it each round). */
  private wakeAtOnce(dueAt: number): void {
    if (this.dueTimes.some((t) => Math.abs(t - dueAt) <= 2)) return;
    this.wakeAt(dueAt);
  }

  private armWakeTimer(): void {
    if (this.dueTimes.length === 0 || !this.active) return;
    const next = Math.min(...this.dueTimes);
    if (this.wakeTimer && this.wakeTimerAt <= next) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimerAt = next;
    this.wakeTimer = setTimeout(() => this.onWakeTimer(), Math.max(0, next - Date.now()) + 1);
    this.wakeTimer.unref();
  }

  private onWakeTimer(): void {
    this.wakeTimer = undefined;
    const now = Date.now();
    this.dueTimes = this.dueTimes.filter((t) => t > now);
    if (!this.active) return;
    this.ctx.connections.client
      .xadd(this.keys.wake, 'MAXLEN', 1, '*', 'w', '1')
      .catch((err: unknown) => this.ctx.connections.report(err, `wake ${this.topic}/${this.group}`));
    this.armWakeTimer();
  }

  private async loop(): Promise<void> {
    let backoffMs = 0;
    while (this.active) {
      this.checkDrain();
      this.growReadAhead();
      let room = this.options.prefetch + this.readAhead - this.outstanding.size - this.waiting;
      let readNew = true;
      const free = this.options.prefetch - this.outstanding.size - this.buffered;
      if (room <= 0 && this.buffered === 0 && free > 0) {
        // Handler slots are free and only followers wait: their holders may be gone (a fetch reply
        // lost to a reconnect). Fetch for the free slots, reading new entries only while the
        // followers stay within bounds, so the reclaim step can bring lost holders back.
        if (this.followerCount < this.options.prefetch + this.readAhead) room = free;
        else if (Date.now() >= this.nextReclaimAt) {
          room = free;
          readNew = false;
        }
      }
      // Refill once the buffer is down to half, so fetches stay large while handlers never starve.
      if (room <= 0 || this.aboveRefillLevel) {
        if (this.followerCount > 0 && this.buffered === 0 && free > 0)
          await this.pause(Math.max(1, this.nextReclaimAt - Date.now()));
        else await new Promise<void>((resolve) => (this.wakeUp = resolve));
        continue;
      }
      const reclaim = this.cursor !== '0-0' || Date.now() >= this.nextReclaimAt;
      // Ordering none: new entries come from a plain XREADGROUP sent right behind the fetch script,
      // so their bodies never pass through Lua (ADR 0309). Not while the script is likely to hand
      // out something itself (a reclaim scan, or retries and released entries waiting): both would
      // fill the same free slots, and the Lua read takes only what room is left.
      const plainRead = readNew && this.ordering === 'none' && !reclaim && !this.scriptHandedOut;
      let result: FetchResult;
      this.settledSinceFetch = 0;
      let applied!: () => void;
      const fetchSeq = ++this.callSeq;
      this.fetchInFlight = { seq: fetchSeq, applied: new Promise<void>((r) => (applied = r)) };
      const carried = this.takeForFetch();
      try {
        result = await this.fetch(
          Math.min(room, this.ctx.options.batchSize),
          reclaim,
          readNew,
          plainRead,
          carried,
        );
        backoffMs = 0;
      } catch (err) {
        this.fetchInFlight = undefined;
        applied();
        if (carried) this.carriedDone(carried, undefined, fetchSeq, err);
        if (!this.active) break;
        if (/NOGROUP/.test(toError(err).message)) {
          // The stream or group vanished (deleted, or a server restarted without persistence).
          this.ctx.connections.report(err, `fetch ${this.topic}/${this.group}: re-creating the group`);
          await this.ensureGroup().catch(() => undefined);
        } else {
          this.ctx.connections.report(err, `fetch ${this.topic}/${this.group}`);
        }
        backoffMs = Math.min(Math.max(backoffMs * 2, 50), 2_000);
        await this.pause(backoffMs);
        continue;
      }
      // The settles ran before this call's fetch steps, so they concern followers of earlier fetches.
      if (carried) this.carriedDone(carried, result.settled, fetchSeq, undefined);
      if (reclaim) this.afterReclaim(result.cursor);
      let followers = 0;
      for (const d of result.deliveries)
        if (d.follower) {
          this.addFollower(d, fetchSeq);
          followers++;
        }
      // Followers cost Redis more than the round trips read-ahead saves (ADR 0312): a fetch that was
      // mostly followers means the window spans keys that repeat, so it shrinks.
      this.followerHeavy = followers * FOLLOWER_SHARE > result.deliveries.length;
      if (this.followerHeavy) this.shrinkReadAhead();
      this.fetchInFlight = undefined;
      applied();
      if (!this.active) {
        // Fetched while closing: back to the group at once, never handed to the handler. (Followers
        // stay: releasing their key's holder moves them to the held set, in order.)
        for (const d of result.deliveries.reverse()) if (!d.follower) void d.release().catch(() => undefined);
        break;
      }
      let kept = result.deliveries;
      if (result.surplus > 0) {
        // The script and the plain read together took more than the room: the newest go back to the
        // group uncounted (newest first, so the oldest ends up first in line), keeping the bound on
        // what a member holds exact.
        kept = result.deliveries.slice(0, result.deliveries.length - result.surplus);
        for (let i = result.deliveries.length - 1; i >= kept.length; i--)
          void result.deliveries[i]!.release().catch(() => undefined);
      }
      for (const d of kept) if (!d.follower) this.buffer.push(d);
      this.dispatch();
      // Above half: how long the upper half lasts decides (checkDrain). At or below: the handlers took
      // it as it came, which is as fast as a drain gets.
      const aboveHalf = this.aboveRefillLevel;
      this.aboveHalfSince = aboveHalf ? Date.now() : 0;
      if (!aboveHalf) this.halfDrainedFast = true;
      if (result.deliveries.length > 0 || result.read > 0 || this.cursor !== '0-0') continue;
      // The script skipped its idle step (a backlog was expected, and others took it): once more with it.
      if (result.lastStream === '') continue;
      await this.waitForWork(result);
    }
  }

  private async fetch(
    room: number,
    reclaim: boolean,
    readNew: boolean,
    plainRead: boolean,
    carried: SettleBatch | undefined,
  ): Promise<FetchResult> {
    const args: (string | number)[] = [
      this.group,
      this.name,
      room,
      this.ordering === 'key' ? '1' : '0',
      reclaim ? this.ctx.options.claimIdleMs : -1,
      this.cursor,
      // After a plain read that filled its room a backlog is likely: the idle step (the last ids a
      // blocking read would start from, five commands) is skipped, and run again once a read falls short.
      plainRead ? (this.backlog ? '2' : '0') : readNew ? '1' : '0',
    ];
    if (carried) this.pushOps(args, carried.ops);
    const scripted = this.ctx.scripts.fetch(this.keys.fetchKeys(), args);
    // Sent in the same turn on the same connection: one round trip for both. Redis usually runs the
    // script first (after a restart ioredis re-sends it as EVAL behind the read); either order is
    // fine for ordering none, as the surplus step below keeps the room whichever took what.
    const plain = plainRead
      ? this.ctx.connections.client.xreadgroupBuffer(
          'GROUP',
          this.group,
          this.name,
          'COUNT',
          room,
          'STREAMS',
          this.keys.stream,
          '>',
        )
      : undefined;
    // Both settle before anything is thrown, so no rejection is left unhandled. Entries of a read
    // whose partner failed stay leased to this consumer unseen and are reclaimed after claimIdleMs,
    // like those of any lost fetch reply.
    const [scriptOutcome, plainOutcome] = await Promise.allSettled([scripted, plain]);
    if (scriptOutcome.status === 'rejected') throw scriptOutcome.reason;
    if (plainOutcome.status === 'rejected') throw plainOutcome.reason;
    const reply = scriptOutcome.value as [
      Buffer,
      Buffer,
      Buffer,
      Buffer,
      number,
      number,
      (Buffer | number)[],
      (number | Buffer)[] | number | undefined,
    ];
    const [cursor, lastStream, lastWake, lastTopicWake, untilDue, read, entries, settled] = reply;
    const deliveries: RedisDelivery[] = [];
    const now = Date.now();
    // Per entry: its id, one number for attempt, follower flag and layout, then its items (see the
    // fetch script's emit).
    for (let i = 0; i < entries.length;) {
      const streamId = (entries[i] as Buffer).toString('latin1');
      const meta = entries[i + 1] as number;
      const layout = meta % 8;
      const follower = Math.floor(meta / 8) % 2;
      const attempt = Math.floor(meta / 16);
      const start = i + 2;
      i = start + itemsOf(layout, entries, start);
      // An entry Herald did not write comes back marked malformed: the consumer dead-letters it.
      const message = decodeEntry(streamId, entries as Buffer[], start, layout);
      const d = new RedisDelivery(this, streamId, message, this.topic, this.group, attempt, now);
      // Only an entry with a key can be a follower; one that decodes without its key waits as usual.
      if (follower === 1 && message.key !== undefined) d.follower = true;
      deliveries.push(d);
    }
    // With ordering none every new entry the script read is handed out: the rest came from the
    // reclaim scan or the ready list.
    this.scriptHandedOut = deliveries.length > read;
    let plainCount = 0;
    const streams = plainOutcome.value;
    if (streams) {
      for (const [, entries] of streams as [Buffer, [Buffer, Buffer[] | null][]][]) {
        for (const [idBytes, fields] of entries) {
          if (!fields) continue; // only a history read returns deleted entries; '>' never does
          const streamId = idBytes.toString('latin1');
          deliveries.push(
            new RedisDelivery(this, streamId, decodeFields(streamId, fields), this.topic, this.group, 1, now),
          );
          plainCount++;
        }
      }
    }
    if (plainRead) this.backlog = plainCount >= room;
    return {
      cursor: cursor.toString('latin1'),
      lastStream: lastStream.toString('latin1'),
      lastWake: lastWake.toString('latin1'),
      lastTopicWake: lastTopicWake.toString('latin1'),
      untilDue,
      read: read + plainCount,
      deliveries,
      surplus: Math.max(0, deliveries.length - room),
      // A count means that many ones (see the fetch script); only followers here need them spelled out.
      settled:
        typeof settled === 'number'
          ? this.followers.size > 0
            ? new Array<number>(settled).fill(1)
            : []
          : (settled ?? []).map((r) => (typeof r === 'number' ? r : r.toString('latin1'))),
    };
  }

  private afterReclaim(cursor: string): void {
    this.cursor = cursor;
    if (cursor !== '0-0') return;
    this.nextReclaimAt = Date.now() + this.reclaimEveryMs;
    if (++this.reclaimCycles % SWEEP_EVERY_CYCLES === 0) {
      const idleMs = Math.max(10 * this.ctx.options.claimIdleMs, 60_000);
      this.ctx.scripts
        .forgetIdleConsumers(this.keys.stream, this.group, idleMs)
        .catch((err: unknown) =>
          this.ctx.connections.report(err, `forget idle consumers of ${this.topic}/${this.group}`),
        );
    }
  }

  private addFollower(d: RedisDelivery, fetchSeq: number): void {
    d.fetchSeq = fetchSeq;
    const key = d.message.key!;
    const list = this.followers.get(key);
    if (list) list.push(d);
    else this.followers.set(key, [d]);
    this.followerCount++;
  }

  /** The ack of `key`'s holder passed the key to follower `id`: it is next in line for a handler slot. */
  private promoteFollower(key: string, id: string): void {
    const list = this.followers.get(key);
    if (!list) return;
    // The script passes the key to the oldest follower, which is the first one here.
    while (list.length > 0) {
      const d = list.shift()!;
      this.followerCount--;
      if (d.streamId !== id) continue; // not expected: the older one was dropped from the PEL meanwhile
      d.follower = false;
      if (!this.active) {
        // Closing: the key goes back to the group with it (also after releaseAll, hence no settle()).
        d.done = true;
        this.enqueue('r', d, 0).catch(() => undefined);
      } else {
        this.buffer.push(d);
        this.scheduleDispatch();
      }
      break;
    }
    if (list.length === 0) this.followers.delete(key);
  }

  /**
   * The settle script moved `key`'s followers to the held set (or another member did): forget those
   * fetched by calls Redis ran before it (`beforeSeq`).
   */
  private dropFollowers(key: string, beforeSeq = Infinity): void {
    const list = this.followers.get(key);
    if (!list) return;
    const dropped = list.filter((d) => d.fetchSeq < beforeSeq);
    if (dropped.length === list.length) this.followers.delete(key);
    else this.followers.set(key, list.slice(dropped.length));
    this.followerCount -= dropped.length;
    for (const d of dropped) d.done = true;
    this.wake();
    this.maybeRetire();
  }

  /** Handing out from a settle waits for a microtask, so a handler is never entered from inside `ack()`. */
  private scheduleDispatch(): void {
    if (this.dispatchScheduled || this.buffered === 0) return;
    this.dispatchScheduled = true;
    queueMicrotask(() => {
      this.dispatchScheduled = false;
      this.dispatch();
    });
  }

  /** Hands buffered entries to the handler while slots are free. */
  private dispatch(): void {
    if (this.dispatching) return; // a handler settled synchronously: the running loop below continues
    this.dispatching = true;
    try {
      while (this.active && this.buffered > 0 && this.outstanding.size < this.options.prefetch) {
        const d = this.buffer[this.bufferHead]!;
        this.buffer[this.bufferHead++] = undefined as unknown as RedisDelivery;
        if (this.bufferHead === this.buffer.length) {
          this.buffer = [];
          this.bufferHead = 0;
        } else if (this.bufferHead >= 1024 && this.bufferHead * 2 >= this.buffer.length) {
          this.buffer = this.buffer.slice(this.bufferHead);
          this.bufferHead = 0;
        }
        this.handOut(d);
      }
    } finally {
      this.dispatching = false;
    }
    if (!this.aboveRefillLevel) this.wake();
  }

  private growReadAhead(): void {
    const max = this.readAheadLimit;
    if (this.readAhead >= max || this.followerHeavy || this.settledSinceFetch < this.options.prefetch) return;
    // Past the first step the count says little: a refill comes when the buffer is down to half, and
    // a whole window settles between two refills however slow the handlers are. So the buffer must
    // also have drained fast since the last step (one step each: growing refills at once, and a
    // second step before the buffer was timed again would go by the count alone).
    if (this.readAhead > 0 && !this.halfDrainedFast) return;
    this.halfDrainedFast = false;
    this.readAhead = Math.min(max, Math.max(this.options.prefetch, this.readAhead * 2));
  }

  /**
   * Once the buffer a fetch left above half is down to half: if that took longer than SLOW_DRAIN_MS,
   * the handlers have slowed down since the read-ahead grew, so it shrinks: as many halvings as bring
   * a half under SLOW_DRAIN_MS. Within half of it, the read-ahead may grow one step.
   */
  private checkDrain(): void {
    if (this.aboveHalfSince === 0 || this.aboveRefillLevel) return;
    let lasted = Date.now() - this.aboveHalfSince;
    this.aboveHalfSince = 0;
    this.halfDrainedFast = lasted * 2 <= SLOW_DRAIN_MS;
    for (; lasted > SLOW_DRAIN_MS && this.readAhead > 0; lasted /= 2) this.shrinkReadAhead();
  }

  /** The inverse of a growth step: halved, and 0 below one `prefetch` window. */
  private shrinkReadAhead(): void {
    const half = Math.floor(this.readAhead / 2);
    this.readAhead = half < this.options.prefetch ? 0 : half;
  }

  private handOut(delivery: RedisDelivery): void {
    this.outstanding.set(delivery.streamId, delivery);
    try {
      const result = this.onDelivery(delivery);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(delivery, err));
    } catch (err) {
      this.handlerCrashed(delivery, err);
    }
  }

  private handlerCrashed(delivery: RedisDelivery, err: unknown): void {
    // A delivery handler must settle, not throw; keep the message and slow the loop down.
    this.ctx.connections.report(err, `delivery handler of ${this.topic}/${this.group} threw`);
    void delivery.nack({ delayMs: 1000 }).catch(() => undefined);
  }

  /**
   * Blocks on the stream, the group's wake stream and the topic's (bumped by a scheduled publish)
   * until something may be fetchable, and no longer than until the next retry or scheduled
   * message is due.
   */
  private async waitForWork(result: FetchResult): Promise<void> {
    const blocking = this.blocking;
    if (!blocking || !this.active) return;
    let timeout = Math.min(this.ctx.options.blockMs, Math.max(1, this.nextReclaimAt - Date.now()));
    if (result.untilDue >= 0) timeout = Math.min(timeout, result.untilDue + 1);
    if (timeout <= 1 && result.untilDue === 0) return;
    // Redis times out a blocked read only on its own cron (up to 100 ms late at the default hz),
    // and a scheduled message's publisher may be long gone: whoever sees a due time coming keeps
    // the ADR 0025 timer for it, which bumps the wake stream on time.
    if (result.untilDue > 0 && timeout > result.untilDue) this.wakeAtOnce(Date.now() + result.untilDue);
    try {
      await blocking.xread(
        'COUNT',
        1,
        'BLOCK',
        Math.max(1, timeout),
        'STREAMS',
        this.keys.stream,
        this.keys.wake,
        this.keys.topicWake,
        result.lastStream,
        result.lastWake,
        result.lastTopicWake,
      );
    } catch (err) {
      if (!this.active) return;
      this.ctx.connections.report(err, `blocking read on ${this.topic}/${this.group}`);
      await this.pause(200);
    }
  }

  private async ensureGroup(): Promise<void> {
    try {
      const start = this.options.startFrom === 'latest' ? '$' : '0';
      await this.ctx.connections.client.xgroup('CREATE', this.keys.stream, this.group, start, 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test(toError(err).message)) throw err;
    }
  }

  private enqueue(op: Op, delivery: RedisDelivery, delayMs: number): Promise<void> {
    let batch = this.queue[this.queue.length - 1];
    if (batch === undefined || batch.ops.length >= SETTLE_CHUNK) {
      batch = newBatch();
      this.queue.push(batch);
    }
    batch.ops.push({ op, delivery, delayMs });
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything settled in this turn of the event loop goes in one round trip; nextTick runs once
      // the turn's promise jobs are done, without waiting for an I/O round of the loop.
      process.nextTick(this.flushTick);
    }
    return batch.done;
  }

  private readonly flushTick = (): void => this.flushNow();

  /**
   * Sends the queued settlements, at most one call in flight: whatever is settled while it runs
   * goes in the next call, so under load a call carries many settlements (one Lua run and one round
   * trip for all of them) and with little load each still leaves in the turn it was made.
   */
  private flushNow(): void {
    this.flushScheduled = false;
    if (this.sending || this.queue.length === 0) return;
    this.sending = true;
    const batch = this.queue.shift()!;
    const flush = this.send(batch).finally(() => {
      this.sending = false;
      this.flushes.delete(flush);
      this.flushNow();
      this.maybeRetire();
    });
    this.flushes.add(flush);
  }

  private async send(batch: SettleBatch): Promise<void> {
    const ops = batch.ops;
    try {
      if (this.plainAcks(ops)) {
        const args: string[] = [this.keys.stream, this.group];
        for (const p of ops) args.push(p.delivery.streamId);
        await this.ctx.connections.client.xack(...(args as [string, string, ...string[]]));
      } else {
        const args: (string | number)[] = [this.group, this.name];
        this.pushOps(args, ops);
        const seq = ++this.callSeq;
        const replies = await this.ctx.scripts.settle(this.keys.all(), args);
        // Redis ran a fetch sent before this call first: its followers must be known here before
        // this reply passes a key to one of them or says they were moved to the held set.
        const fetching = this.fetchInFlight;
        if (fetching && fetching.seq < seq) await fetching.applied;
        this.applySettled(ops, replies, seq);
      }
      batch.resolve();
    } catch (thrown) {
      this.settleFailed(batch, thrown);
    }
  }

  /** Acks that need no key passed on: a plain XACK does them. */
  private plainAcks(ops: readonly PendingSettle[]): boolean {
    const keyed = this.ordering === 'key';
    for (const p of ops) if (p.op !== 'a' || (keyed && p.delivery.message.key !== undefined)) return false;
    return true;
  }

  /** The settle script's arguments for `batch`: op id key delayMs each. */
  private pushOps(args: (string | number)[], batch: readonly PendingSettle[]): void {
    const keyed = this.ordering === 'key';
    for (const p of batch)
      args.push(p.op, p.delivery.streamId, keyed ? (p.delivery.message.key ?? '') : '', p.delayMs);
  }

  /** Applies a settle reply: keys passed to followers here, or followers moved to the held set. */
  private applySettled(batch: readonly PendingSettle[], replies: (number | string)[], seq: number): void {
    // Only keys with followers here are affected (the common case without read-ahead: none).
    if (this.ordering !== 'key' || this.followers.size === 0) return;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const key = p.delivery.message.key;
      if (key === undefined || !this.followers.has(key)) continue;
      const reply = replies[i];
      if (typeof reply === 'string') this.promoteFollower(key, reply);
      else if (!p.delivery.follower) this.dropFollowers(key, seq);
    }
  }

  private settleFailed(batch: SettleBatch, thrown: unknown): void {
    const err = toError(thrown);
    // The messages stay leased to this consumer and are reclaimed after claimIdleMs: not lost.
    this.ctx.connections.report(err, `settle on ${this.topic}/${this.group}`);
    // Whether the call ran is unknown: it may have passed a key to a follower. Letting the
    // followers' leases lapse hands them to the reclaim step, which sorts out either case.
    for (const p of batch.ops)
      if (p.delivery.message.key !== undefined) this.dropFollowers(p.delivery.message.key);
    batch.reject(err);
  }

  /**
   * With ordering by key, the settles queued when the loop fetches ride in the fetch call (ADR 0307):
   * one script run and one round trip instead of two. They count as the settle call in flight, so
   * settles queued meanwhile wait for the fetch reply and leave in the next call, as before.
   */
  private takeForFetch(): SettleBatch | undefined {
    if (this.ordering !== 'key' || this.sending || this.released || this.queue.length === 0) return undefined;
    this.sending = true;
    const batch = this.queue.shift()!;
    let done!: () => void;
    const flush = new Promise<void>((resolve) => (done = resolve));
    this.carriedFlush = { flush, done };
    this.flushes.add(flush);
    return batch;
  }

  /** The fetch that carried `batch` answered (`replies`) or failed (`err`). */
  private carriedDone(
    batch: SettleBatch,
    replies: (number | string)[] | undefined,
    seq: number,
    err: unknown,
  ): void {
    if (replies) {
      this.applySettled(batch.ops, replies, seq);
      batch.resolve();
    } else this.settleFailed(batch, err);
    const carried = this.carriedFlush;
    this.carriedFlush = undefined;
    this.sending = false;
    if (carried) {
      this.flushes.delete(carried.flush);
      carried.done();
    }
    this.flushNow();
    this.maybeRetire();
  }

  private renewLeases(): void {
    if (this.settledSinceRenew === 0) this.readAhead = 0; // the handlers stalled: stop reading ahead
    this.settledSinceRenew = 0;
    const cutoff = Date.now() - this.renewEveryMs;
    const now = Date.now();
    const ids: string[] = [];
    const due = (d: RedisDelivery): void => {
      if (d.leasedAt > cutoff) return;
      d.leasedAt = now;
      ids.push(d.streamId);
    };
    for (const d of this.outstanding.values()) due(d);
    // Buffered entries are leased too: renewing them keeps another member from reclaiming an entry
    // that is only waiting here for a handler slot; once this process dies they expire like the rest.
    for (let i = this.bufferHead; i < this.buffer.length; i++) due(this.buffer[i]!);
    for (const list of this.followers.values()) for (const d of list) due(d);
    if (ids.length === 0) return;
    for (let i = 0; i < ids.length; i += SETTLE_CHUNK) {
      this.ctx.scripts
        .touch(this.keys.stream, [this.group, this.name, ...ids.slice(i, i + SETTLE_CHUNK)])
        .then((lost) => this.forgetLost(lost))
        .catch((err: unknown) =>
          this.ctx.connections.report(err, `renew leases on ${this.topic}/${this.group}`),
        );
    }
  }

  /**
   * Entries another member reclaimed while this process stalled: those not handed out yet are dropped
   * (their new owner delivers them); a follower's whole key goes, its order is kept over there.
   */
  private forgetLost(lost: string[]): void {
    if (lost.length === 0) return;
    const gone = new Set(lost);
    const kept = this.buffer.slice(this.bufferHead).filter((d) => {
      if (!gone.has(d.streamId)) return true;
      d.done = true;
      return false;
    });
    this.buffer = kept;
    this.bufferHead = 0;
    for (const [key, list] of [...this.followers])
      if (list.some((d) => gone.has(d.streamId))) this.dropFollowers(key);
    this.wake();
    this.maybeRetire();
  }

  /** Once closed, drained and with every settle sent, the transport can forget this consumer. */
  private maybeRetire(): void {
    if (this.active || this.outstanding.size > 0 || this.waiting > 0) return;
    this.stopRenewing();
    if (this.queue.length === 0 && this.flushes.size === 0 && !this.flushScheduled) this.ctx.retired(this);
  }

  private stopRenewing(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }
}

interface FetchResult {
  readonly cursor: string;
  readonly lastStream: string;
  readonly lastWake: string;
  readonly lastTopicWake: string;
  /** Per settle operation carried by the call: as the settle script returns them. */
  readonly settled: (number | string)[];
  /** Milliseconds until the earliest retry or scheduled message is due; -1 when there is none. */
  readonly untilDue: number;
  /** New stream entries read (delivered or held back by their key). */
  readonly read: number;
  /** How many of the newest deliveries exceed the room asked for (script and plain read together). */
  readonly surplus: number;
  readonly deliveries: RedisDelivery[];
}

/** One lease of one stream entry. */
export class RedisDelivery implements Delivery {
  done = false;
  /** Waits in this consumer for the ack of its key's holder (ADR 0305). */
  follower = false;
  /** Sequence number of the fetch call that returned it (see GroupConsumer.callSeq). */
  fetchSeq = 0;
  constructor(
    private readonly consumer: GroupConsumer,
    readonly streamId: string,
    readonly message: Message,
    readonly topic: string,
    readonly group: string,
    readonly attempt: number,
    /** When the lease was taken or last renewed (local clock). */
    public leasedAt: number,
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

  private settle(op: Op, delayMs: number): Promise<void> {
    if (this.done) return Promise.resolve();
    this.done = true;
    return this.consumer.settle(this, op, delayMs);
  }
}
