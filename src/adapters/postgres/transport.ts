import { randomBytes } from 'node:crypto';
import pg from 'pg';
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
} from '../../transport/transport.js';
import {
  scheduledTime,
  validateCancelIds,
  validateDelay,
  validateSubscribeOptions,
} from '../../transport/validate.js';
import { decodeHeaders } from './codec.js';
import { connect, num, withTimeout, type PostgresConnection } from './connection.js';
import {
  resolveTransportOptions,
  type PostgresTransportOptions,
  type ResolvedTransportOptions,
} from './options.js';
import { channelOf } from './schema.js';

/** Most messages leased by one fetch, so one fetch transaction stays short. */
const MAX_FETCH = 256;
const RETENTION_EVERY_MS = 5_000;
const RETENTION_BATCH = 5_000;
const LISTEN_RETRY_MS = 500;

interface FetchRow {
  seq: string | null;
  attempt: number;
  id: string;
  key: string | null;
  headers: string;
  body: Buffer;
  next_visible: string | null;
  contended: boolean;
}

interface Settlement {
  delivery: PostgresDelivery;
  how: 'a' | 'n' | 'r';
  visibleAt: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Durable broker in PostgreSQL: topic logs, consumer-group cursors, leases taken with
 * `FOR UPDATE SKIP LOCKED`, the retry queue, per-key order across processes. Idle members sleep
 * until a `NOTIFY` (sent by every publish and settlement, in any process) or the next redelivery
 * time; there is no busy polling. See docs/adapters/postgres.md and ADRs 0940–0945.
 */
export class PostgresTransport implements Transport {
  readonly name = 'postgres';
  readonly capabilities: TransportCapabilities = {
    persistent: true,
    distributed: true,
    consumerGroups: true,
    orderedByKey: true,
    delayedRedelivery: true,
    scheduledPublish: true,
  };

  private readonly instanceId = randomBytes(6).toString('base64url');
  private fetches = 0;
  private readonly members = new Set<Member>();
  private readonly unsettled = new Set<PostgresDelivery>();
  private readonly topicIds = new Map<string, number>();
  private settleQueue: Settlement[] = [];
  private settleFlush: NodeJS.Immediate | undefined;
  /** Settlement batches and lease renewals, one after another (see {@link renewLeases}). */
  private settling: Promise<void> = Promise.resolve();
  private renewQueued = false;
  private readonly renewTimer: NodeJS.Timeout;
  private readonly retentionTimer: NodeJS.Timeout;
  private listener: pg.Client | undefined;
  private listenTimer: NodeJS.Timeout | undefined;
  private readonly channel: string;
  private closed = false;

  private constructor(
    private readonly db: PostgresConnection,
    private readonly options: ResolvedTransportOptions,
  ) {
    this.channel = channelOf(db.schema);
    this.renewTimer = setInterval(() => this.renewLeases(), Math.floor(options.visibilityTimeoutMs / 3));
    this.renewTimer.unref();
    this.retentionTimer = setInterval(() => void this.retentionPass(), RETENTION_EVERY_MS);
    this.retentionTimer.unref();
  }

  /**
   * Validates the options (ConfigError naming the field), connects within `connectTimeoutMs`
   * (BackendUnreachableError naming the URL), creates or upgrades the schema and starts listening.
   */
  static async connect(options: PostgresTransportOptions): Promise<PostgresTransport> {
    const resolved = resolveTransportOptions(options);
    const db = await connect(resolved);
    const transport = new PostgresTransport(db, resolved);
    await transport.listen();
    return transport;
  }

  /** The schema holding the tables. */
  get schema(): string {
    return this.db.schema;
  }

  /**
   * One round trip, one transaction. With a future `deliverAt` the messages wait in the
   * `scheduled` table and a member's fetch moves them into the log when due (ADR 0041).
   */
  async publish(topic: string, messages: readonly Message[], options?: PublishOptions): Promise<void> {
    this.assertOpen();
    if (typeof topic !== 'string' || topic.length === 0)
      throw new ConfigError('topic', 'must be a non-empty string');
    const now = Date.now();
    const deliverAt = scheduledTime(options, now);
    if (messages.length === 0) return;
    const n = messages.length;
    const ids = new Array<string>(n);
    const keys = new Array<string | null>(n);
    const headers = new Array<string>(n);
    const bodies = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      ids[i] = m.id;
      keys[i] = m.key ?? null;
      headers[i] = JSON.stringify(m.headers);
      bodies[i] = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength);
    }
    if (deliverAt === undefined) {
      await this.db.pool.query({
        name: `herald-publish-${this.db.schema}`,
        text: `SELECT ${this.db.s}.publish($1, $2, $3, $4, $5, $6, $7)`,
        values: [topic, ids, keys, headers, bodies, now, this.channel],
      });
    } else {
      await this.db.pool.query({
        name: `herald-schedule-${this.db.schema}`,
        text: `SELECT ${this.db.s}.schedule($1, $2, $3, $4, $5, $6, $7, $8)`,
        values: [topic, ids, keys, headers, bodies, deliverAt, now, this.channel],
      });
    }
    for (const m of this.members) if (m.topic === topic) this.wake(m);
  }

  /** Deletes scheduled messages not yet moved into the log; see {@link Transport.cancelScheduled}. */
  async cancelScheduled(topic: string, ids: readonly string[]): Promise<number> {
    this.assertOpen();
    validateCancelIds(topic, ids);
    if (ids.length === 0) return 0;
    const s = this.db.s;
    const { rowCount } = await this.db.pool.query(
      `DELETE FROM ${s}.scheduled d USING ${s}.topics t
        WHERE t.name = $1 AND d.topic_id = t.id AND d.id = ANY($2::text[])`,
      [topic, ids],
    );
    return rowCount ?? 0;
  }

  async subscribe(
    topic: string,
    options: SubscribeOptions,
    onDelivery: DeliveryHandler,
  ): Promise<Subscription> {
    this.assertOpen();
    validateSubscribeOptions(topic, options);
    const topicId = await this.topicId(topic);
    const groupId = await this.groupId(topicId, options.group, options.startFrom ?? 'earliest');
    const member = new Member(
      topic,
      topicId,
      options.group,
      groupId,
      options.prefetch,
      options.ordering !== 'none',
      onDelivery,
    );
    this.members.add(member);
    this.wake(member);
    return {
      close: async () => {
        member.active = false;
        member.cancel();
        this.members.delete(member);
        await member.polling;
      },
    };
  }

  async stats(topic: string, group: string): Promise<GroupStats> {
    this.assertOpen();
    const s = this.db.s;
    const { rows } = await this.db.pool.query<{
      unread: string;
      scheduled: string;
      due: string;
      in_flight: string;
      delayed: string;
      waiting: string;
    }>(
      `WITH t AS (SELECT id FROM ${s}.topics WHERE name = $1),
            g AS (SELECT g.id, g.cursor FROM ${s}.groups g JOIN t ON g.topic_id = t.id WHERE g.name = $2)
       SELECT (SELECT count(*) FROM ${s}.messages m, t
                WHERE m.topic_id = t.id AND m.seq > coalesce((SELECT cursor FROM g), 0)) AS unread,
              (SELECT count(*) FROM ${s}.scheduled d, t WHERE d.topic_id = t.id AND d.deliver_at > $3) AS scheduled,
              (SELECT count(*) FROM ${s}.scheduled d, t WHERE d.topic_id = t.id AND d.deliver_at <= $3) AS due,
              count(*) FILTER (WHERE p.lease_until > $3) AS in_flight,
              count(*) FILTER (WHERE p.lease_until <= $3 AND p.visible_at > $3) AS delayed,
              count(*) FILTER (WHERE p.lease_until <= $3 AND p.visible_at <= $3) AS waiting
         FROM ${s}.pending p WHERE p.group_id = (SELECT id FROM g)`,
      [topic, group, Date.now()],
    );
    const r = rows[0]!;
    // Due but not yet moved into the log (no member has fetched since): counted as lag.
    return {
      lag: num(r.unread) + num(r.due) + num(r.waiting),
      scheduled: num(r.scheduled),
      inFlight: num(r.in_flight),
      delayed: num(r.delayed),
    };
  }

  /** Names of the topics in the schema (for tools such as `herald tail`). */
  async topics(): Promise<string[]> {
    const { rows } = await this.db.pool.query<{ name: string }>(
      `SELECT name FROM ${this.db.s}.topics ORDER BY name`,
    );
    return rows.map((r) => r.name);
  }

  /**
   * Every topic in the schema (published to, scheduled on or subscribed to) and the groups that
   * read it, sorted by name in byte order like the other transports (not the database collation).
   */
  async topology(): Promise<readonly TopicTopology[]> {
    this.assertOpen();
    const s = this.db.s;
    const { rows } = await this.db.pool.query<{ topic: string; groups: string[] }>(
      `SELECT t.name AS topic,
              coalesce(array_agg(g.name ORDER BY g.name COLLATE "C") FILTER (WHERE g.name IS NOT NULL), '{}') AS groups
         FROM ${s}.topics t LEFT JOIN ${s}.groups g ON g.topic_id = t.id
        GROUP BY t.name ORDER BY t.name COLLATE "C"`,
    );
    return rows.map((r) => ({ topic: r.topic, groups: r.groups }));
  }

  /**
   * Forgets a consumer group on a topic: its position and unacknowledged messages. Retention never
   * deletes what a group has not acknowledged, so a group gone for good must be deleted to let the
   * log shrink. Returns whether the group existed.
   */
  async deleteGroup(topic: string, group: string): Promise<boolean> {
    this.assertOpen();
    const s = this.db.s;
    const client = await this.db.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ id: number }>(
        `DELETE FROM ${s}.groups g USING ${s}.topics t WHERE g.topic_id = t.id AND t.name = $1 AND g.name = $2 RETURNING g.id`,
        [topic, group],
      );
      if (rows[0]) await client.query(`DELETE FROM ${s}.pending WHERE group_id = $1`, [rows[0].id]);
      await client.query('COMMIT');
      return rows.length > 0;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Drops the whole schema: every topic, group, stored event, dead letter and outbox row in it.
   * For throw-away namespaces (the demo, tests); the transport is closed afterwards.
   */
  async dropNamespace(): Promise<void> {
    this.assertOpen();
    await this.db.pool.query(`DROP SCHEMA IF EXISTS ${this.db.s} CASCADE`);
    await this.close();
  }

  /**
   * Applies retention now to every topic (it also runs every few seconds in the background): deletes
   * acknowledged messages older than `retention.maxAgeMs` or beyond `retention.maxMessages`, never
   * one that a group has not acknowledged. Returns how many messages were deleted.
   */
  async applyRetention(): Promise<number> {
    this.assertOpen();
    const { maxAgeMs, maxMessages } = this.options.retention;
    if (!Number.isFinite(maxAgeMs) && !Number.isFinite(maxMessages)) return 0;
    const s = this.db.s;
    const cutoff = Number.isFinite(maxAgeMs) ? Date.now() - maxAgeMs : -1;
    const { rows: topics } = await this.db.pool.query<{ id: number; retained: string }>(
      `SELECT id, retained FROM ${s}.topics`,
    );
    let total = 0;
    for (const t of topics) {
      const excess = Number.isFinite(maxMessages) ? Math.max(0, num(t.retained) - maxMessages) : 0;
      for (;;) {
        // The lowest sequence any group still needs: its cursor or its oldest pending message.
        // Messages of the topic below it are acknowledged by every group; the log is in publish
        // order, so the deletable ones are a prefix.
        const { rows } = await this.db.pool.query<{ n: string }>(
          `WITH low AS (
             SELECT min(least(g.cursor + 1, coalesce(
                      (SELECT min(p.seq) FROM ${s}.pending p WHERE p.group_id = g.id), g.cursor + 1))) AS seq
               FROM ${s}.groups g WHERE g.topic_id = $1),
           candidates AS (
             SELECT seq, published_at, row_number() OVER (ORDER BY seq) AS rn FROM (
               SELECT seq, published_at FROM ${s}.messages
                WHERE topic_id = $1 AND seq < coalesce((SELECT seq FROM low), 9223372036854775807)
                ORDER BY seq LIMIT $2) c),
           deleted AS (
             DELETE FROM ${s}.messages m USING candidates c
              WHERE m.seq = c.seq AND (c.rn <= $3 OR c.published_at < $4) RETURNING 1)
           UPDATE ${s}.topics SET retained = retained - (SELECT count(*) FROM deleted) WHERE id = $1
           RETURNING (SELECT count(*) FROM deleted) AS n`,
          [t.id, RETENTION_BATCH, Math.min(excess, RETENTION_BATCH), cutoff],
        );
        const n = num(rows[0]?.n);
        total += n;
        if (n < RETENTION_BATCH) break;
      }
    }
    return total;
  }

  /**
   * Closes subscriptions, applies settlements already made, returns unsettled leases to their
   * groups and ends the connections, within `closeTimeoutMs` (leases not returned in time expire
   * after `visibilityTimeoutMs`; nothing is lost). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.renewTimer);
    clearInterval(this.retentionTimer);
    clearTimeout(this.listenTimer);
    for (const m of this.members) {
      m.active = false;
      m.cancel();
    }
    const deadline = this.options.closeTimeoutMs;
    const work = (async () => {
      await Promise.all([...this.members].map((m) => m.polling));
      this.members.clear();
      if (this.settleFlush) {
        clearImmediate(this.settleFlush);
        this.settleFlush = undefined;
        await this.flushSettlements(true);
      }
      await this.settling;
      const leases = [...this.unsettled];
      for (const d of leases) d.done = true;
      this.unsettled.clear();
      if (leases.length > 0) {
        await this.db.pool.query(
          `UPDATE ${this.db.s}.pending p SET lease_token = NULL, lease_until = 0, attempts = p.attempts - 1
             FROM unnest($1::int[], $2::bigint[], $3::text[]) AS x(g, s, t)
            WHERE p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t`,
          [leases.map((d) => d.groupId), leases.map((d) => d.seq), leases.map((d) => d.token)],
        );
      }
    })();
    try {
      await withTimeout(work, deadline, 'postgres transport close');
    } catch (err) {
      this.options.onError(err as Error);
    }
    const listener = this.listener;
    this.listener = undefined;
    await Promise.all([
      listener ? withTimeout(listener.end(), 1000, 'unlisten').catch(() => undefined) : undefined,
      this.db.end(deadline),
    ]);
  }

  private assertOpen(): void {
    if (this.closed) throw new ClosedError(`PostgresTransport(${this.db.display})`);
  }

  private async topicId(topic: string): Promise<number> {
    let id = this.topicIds.get(topic);
    if (id === undefined) {
      const { rows } = await this.db.pool.query<{ id: number }>(
        // DO UPDATE (not DO NOTHING) so the id comes back even when another process inserted it just now.
        `INSERT INTO ${this.db.s}.topics (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
        [topic],
      );
      id = rows[0]!.id;
      this.topicIds.set(topic, id);
    }
    return id;
  }

  private async groupId(topicId: number, group: string, startFrom: 'earliest' | 'latest'): Promise<number> {
    const s = this.db.s;
    const cursor =
      startFrom === 'latest' ? `(SELECT coalesce(max(seq), 0) FROM ${s}.messages WHERE topic_id = $1)` : '0';
    const { rows } = await this.db.pool.query<{ id: number }>(
      `INSERT INTO ${s}.groups (topic_id, name, cursor, created_at) VALUES ($1, $2, ${cursor}, $3)
       ON CONFLICT (topic_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id`,
      [topicId, group, Date.now()],
    );
    return rows[0]!.id;
  }

  /** One connection LISTENs for the schema's channel; it reconnects by itself after an outage. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(
      this.options.connectionString !== undefined
        ? {
            connectionString: this.options.connectionString,
            connectionTimeoutMillis: this.options.connectTimeoutMs,
          }
        : { ...(this.options.pool!.options as pg.ClientConfig) },
    );
    const retry = (err: unknown): void => {
      if (this.listener === client) this.listener = undefined;
      void client.end().catch(() => undefined);
      if (this.closed) return;
      this.options.onError(new Error(`postgres LISTEN connection lost: ${(err as Error).message}`));
      clearTimeout(this.listenTimer);
      this.listenTimer = setTimeout(() => void this.listen().catch(retry), LISTEN_RETRY_MS);
      this.listenTimer.unref();
    };
    client.on('error', retry);
    client.on('notification', (n) => {
      for (const m of this.members) if (m.topic === n.payload) this.wake(m);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      if (this.listener === undefined && this.members.size === 0 && this.fetches === 0 && !this.closed) {
        // At start the caller hears of it; later a background retry takes over.
        void client.end().catch(() => undefined);
        throw err;
      }
      retry(err);
      return;
    }
    if (this.closed) {
      void client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    // Notifications may have been missed while the connection was down.
    for (const m of this.members) this.wake(m);
  }

  private schedule(m: Member, delayMs: number): void {
    m.cancel();
    if (!m.active) return;
    m.timer = setTimeout(() => {
      m.timer = undefined;
      this.poll(m);
    }, delayMs);
  }

  /** New work may be there: poll at once (or right after the poll under way). */
  private wake(m: Member): void {
    if (!m.active) return;
    if (m.running) {
      m.again = true;
      return;
    }
    m.cancel();
    m.timer = setTimeout(() => {
      m.timer = undefined;
      this.poll(m);
    }, 0);
  }

  private poll(m: Member): void {
    if (!m.active || this.closed || m.running) return;
    const room = m.prefetch - m.outstanding;
    if (room <= 0) return; // a settle wakes it
    m.running = true;
    m.again = false;
    m.polling = this.fetch(m, Math.min(room, MAX_FETCH)).then(
      (next) => {
        m.running = false;
        if (m.again) this.wake(m);
        else if (next !== undefined) this.schedule(m, next);
      },
      (err: unknown) => {
        m.running = false;
        if (!this.closed) this.options.onError(err as Error);
        this.schedule(m, Math.min(this.options.pollIntervalMs, 500));
      },
    );
  }

  /** One fetch; resolves to the delay before the next poll (undefined: wait to be woken). */
  private async fetch(m: Member, limit: number): Promise<number | undefined> {
    const token = `${this.instanceId}.${++this.fetches}`;
    const now = Date.now();
    const { rows } = await this.db.pool.query<FetchRow>({
      name: `herald-fetch-${this.db.schema}`,
      text: `SELECT * FROM ${this.db.s}.fetch($1, $2, $3, $4, $5, $6, $7)`,
      values: [m.groupId, m.topicId, limit, m.byKey, token, now, now + this.options.visibilityTimeoutMs],
    });
    let leased = 0;
    let nextVisible: number | undefined;
    let contended = false;
    for (const row of rows) {
      if (row.seq === null) {
        if (row.next_visible !== null) nextVisible = num(row.next_visible);
        contended = row.contended;
        continue;
      }
      leased++;
      if (!m.active || this.closed) {
        // Subscription closed while the fetch ran: hand the lease straight back.
        const d = new PostgresDelivery(this, m, row, token);
        this.unsettled.add(d);
        m.outstanding++;
        void d.release().catch(() => undefined);
        continue;
      }
      this.deliver(m, new PostgresDelivery(this, m, row, token));
    }
    if (leased > 0) return m.prefetch - m.outstanding > 0 ? 0 : undefined;
    if (contended) return 5; // another member is moving the group cursor: look again shortly
    const untilVisible = nextVisible === undefined ? Infinity : Math.max(1, nextVisible - Date.now());
    return Math.min(this.options.pollIntervalMs, untilVisible);
  }

  private deliver(m: Member, d: PostgresDelivery): void {
    this.unsettled.add(d);
    m.outstanding++;
    try {
      const result = m.onDelivery(d);
      if (result instanceof Promise) result.catch((err: unknown) => this.handlerCrashed(d, err));
    } catch (err) {
      this.handlerCrashed(d, err);
    }
  }

  private handlerCrashed(d: PostgresDelivery, err: unknown): void {
    // A delivery handler must settle, not throw; keep the message and slow its redelivery down.
    process.emitWarning(`postgres transport: delivery handler threw: ${String(err)}`);
    d.nack({ delayMs: 1000 }).catch((e: unknown) => this.options.onError(e as Error));
  }

  /**
   * Called by PostgresDelivery; settles once. Settlements made in one turn of the event loop are
   * applied together in one round trip, which also NOTIFYs the other processes.
   */
  settle(d: PostgresDelivery, how: 'a' | 'n' | 'r', delayMs: number): Promise<void> {
    if (d.done || d.settling || this.closed) return Promise.resolve();
    d.settling = true;
    return new Promise<void>((resolve, reject) => {
      this.settleQueue.push({
        delivery: d,
        how,
        visibleAt: how === 'n' ? Date.now() + delayMs : 0,
        resolve,
        reject,
      });
      this.settleFlush ??= setImmediate(() => {
        this.settleFlush = undefined;
        void this.flushSettlements(false);
      });
    });
  }

  private flushSettlements(closing: boolean): Promise<void> {
    const batch = this.settleQueue;
    this.settleQueue = [];
    if (batch.length === 0) return this.settling;
    const run = async (): Promise<void> => {
      if (this.closed && !closing) {
        for (const item of batch) item.resolve();
        return;
      }
      const topics = [...new Set(batch.map((b) => b.delivery.topic))];
      try {
        await this.db.pool.query({
          name: `herald-settle-${this.db.schema}`,
          text: `SELECT ${this.db.s}.settle($1, $2, $3, $4, $5, $6, $7)`,
          values: [
            batch.map((b) => b.delivery.groupId),
            batch.map((b) => b.delivery.seq),
            batch.map((b) => b.delivery.token),
            batch.map((b) => b.how),
            batch.map((b) => b.visibleAt),
            this.channel,
            topics,
          ],
        });
      } catch (err) {
        // Not settled: the lease is no longer renewed (renewing it would keep the message here
        // forever), so it may be settled again until it expires, and then returns to its group as
        // after a crash (ADR 0042).
        const members = new Set<Member>();
        for (const item of batch) {
          item.delivery.settling = false;
          this.freeSlot(item.delivery);
          members.add(item.delivery.member);
          item.reject(err);
        }
        if (!closing) for (const m of members) this.wake(m);
        return;
      }
      const members = new Set<Member>();
      for (const { delivery, resolve } of batch) {
        delivery.done = true;
        this.freeSlot(delivery);
        members.add(delivery.member);
        resolve();
      }
      // Freed prefetch slots; local members of the same groups are woken by the NOTIFY as well,
      // but waking the settling ones at once saves the round trip.
      if (!closing) for (const m of members) this.wake(m);
    };
    // Settlement batches are applied one after another, in the order they were made.
    this.settling = this.settling.then(run);
    return this.settling;
  }

  /** The delivery stops holding a prefetch slot and a renewed lease (once: settled, or given up). */
  private freeSlot(d: PostgresDelivery): void {
    if (this.unsettled.delete(d)) d.member.outstanding--;
  }

  /**
   * Renewals run on the settlement chain. Beside a settle they would lock the same rows in another
   * order, and PostgreSQL breaks such a deadlock by failing one of the two: a failed renewal costs
   * a redelivery, a failed settle a lease given up (ADR 0042). One waits at most.
   */
  private renewLeases(): void {
    if (this.unsettled.size === 0 || this.closed || this.renewQueued) return;
    this.renewQueued = true;
    this.settling = this.settling.then(() => {
      this.renewQueued = false;
      return this.renewNow();
    });
  }

  private async renewNow(): Promise<void> {
    if (this.unsettled.size === 0 || this.closed) return;
    const leases = [...this.unsettled];
    try {
      await this.db.pool.query(
        `UPDATE ${this.db.s}.pending p SET lease_until = $4
           FROM unnest($1::int[], $2::bigint[], $3::text[]) AS x(g, s, t)
          WHERE p.group_id = x.g AND p.seq = x.s AND p.lease_token = x.t`,
        [
          leases.map((d) => d.groupId),
          leases.map((d) => d.seq),
          leases.map((d) => d.token),
          Date.now() + this.options.visibilityTimeoutMs,
        ],
      );
    } catch (err) {
      if (!this.closed) this.options.onError(err as Error);
    }
  }

  private async retentionPass(): Promise<void> {
    if (this.closed) return;
    try {
      await this.applyRetention();
    } catch (err) {
      if (!this.closed) this.options.onError(err as Error);
    }
  }
}

/** One subscription of this process: a member of a consumer group. */
class Member {
  outstanding = 0;
  active = true;
  running = false;
  again = false;
  polling: Promise<void> = Promise.resolve();
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly topic: string,
    readonly topicId: number,
    readonly group: string,
    readonly groupId: number,
    readonly prefetch: number,
    readonly byKey: boolean,
    readonly onDelivery: DeliveryHandler,
  ) {}

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

class PostgresDelivery implements Delivery {
  done = false;
  settling = false;
  readonly message: Message;
  readonly attempt: number;
  readonly seq: number;
  readonly groupId: number;
  readonly topic: string;
  readonly group: string;

  constructor(
    private readonly transport: PostgresTransport,
    readonly member: Member,
    row: FetchRow,
    readonly token: string,
  ) {
    this.seq = num(row.seq);
    this.attempt = row.attempt;
    const headers = decodeHeaders(row.headers);
    const body = new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength);
    this.message =
      row.key === null ? { id: row.id, headers, body } : { id: row.id, key: row.key, headers, body };
    this.groupId = member.groupId;
    this.topic = member.topic;
    this.group = member.group;
  }

  ack(): Promise<void> {
    return this.transport.settle(this, 'a', 0);
  }

  async nack(options?: { delayMs?: number }): Promise<void> {
    return this.transport.settle(this, 'n', validateDelay(options?.delayMs));
  }

  release(): Promise<void> {
    return this.transport.settle(this, 'r', 0);
  }
}

/** Connects the PostgreSQL transport: `await postgres({ connectionString: 'postgres://...' })`. */
export function postgres(options: PostgresTransportOptions): Promise<PostgresTransport> {
  return PostgresTransport.connect(options);
}
