import type { IdempotencyStore, ReserveResult } from '../../../store/idempotency-store.js';
import type { RedisClient } from '../connection.js';

/*
 * One string key per idempotency key: `r` while reserved (SET NX PX lease), `d` once done (PX ttl).
 * A reservation is one plain `SET key r NX GET PX lease` (Redis >= 7.0): the reply is the value it
 * found, so the check and the write are one step without Lua (ADR 0306). Only a foreign value (not
 * written by Herald) goes through the script, which overwrites it as the SET NX cannot. Release
 * compares before deleting, so it stays a script.
 */
const RESERVE = `
if redis.call('SET', KEYS[1], 'r', 'NX', 'PX', ARGV[1]) then return 'acquired' end
local v = redis.call('GET', KEYS[1])
if v == 'd' then return 'done' end
if v == 'r' then return 'in-progress' end
redis.call('SET', KEYS[1], 'r', 'PX', ARGV[1])
return 'acquired'
`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == 'r' then return redis.call('DEL', KEYS[1]) end
return 0
`;

type Script = (key: string, ...args: (string | number)[]) => Promise<unknown>;

interface Queued {
  readonly op: 'reserve' | 'complete';
  readonly key: string;
  readonly ms: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/** Most commands in one pipeline. */
const PIPELINE_CHUNK = 1000;

/**
 * Idempotency store on Redis; every key expires by itself (PX), nothing needs sweeping.
 *
 * The consumer calls `reserve` and `complete` once per event; the calls made in one turn of the
 * event loop (the handlers of a fetched batch start together) leave as one pipeline, sent on
 * `process.nextTick` (after the turn's promise jobs, before any further I/O): one round trip
 * and one socket write for all of them instead of one each. Each call keeps its own reply, so the
 * semantics are those of separate commands. In a cluster the keys spread over slots, so the calls go
 * out one by one there.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly reserveScript: Script;
  private readonly releaseScript: Script;
  private queue: Queued[] = [];
  private flushScheduled = false;

  /** @param prefix key prefix, e.g. `herald:idem:` (the stores factory adds a hash tag per key). */
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {
    client.defineCommand('herald_idem_reserve', { lua: RESERVE, numberOfKeys: 1 });
    client.defineCommand('herald_idem_release', { lua: RELEASE, numberOfKeys: 1 });
    const commands = client as unknown as Record<string, Script>;
    this.reserveScript = commands.herald_idem_reserve!.bind(client);
    this.releaseScript = commands.herald_idem_release!.bind(client);
  }

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const ms = Math.max(1, Math.ceil(leaseMs));
    const found = await this.enqueue('reserve', this.key(key), ms);
    if (found === null) return 'acquired';
    const value = Buffer.isBuffer(found) ? found.toString() : found;
    if (value === 'd') return 'done';
    if (value === 'r') return 'in-progress';
    return (await this.reserveScript(this.key(key), ms)) as ReserveResult;
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.enqueue('complete', this.key(key), Math.max(1, Math.ceil(ttlMs)));
  }

  /**
   * Adds the completion of `key` to a transaction of yours (`client.multi()`), so a side effect
   * written to Redis in the same MULTI and the "done" mark commit together: a crash can then never
   * leave the effect applied but the event unmarked (which would run it again on redelivery).
   * In a cluster the transaction's keys must share a slot.
   */
  completeIn<T extends { set(key: string, value: string, px: 'PX', ms: number): unknown }>(
    tx: T,
    key: string,
    ttlMs: number,
  ): T {
    tx.set(this.key(key), 'd', 'PX', Math.max(1, Math.ceil(ttlMs)));
    return tx;
  }

  async release(key: string): Promise<void> {
    await this.releaseScript(this.key(key));
  }

  private key(key: string): string {
    return `${this.prefix}${key}`;
  }

  private enqueue(op: Queued['op'], key: string, ms: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ op, key, ms, resolve, reject });
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      process.nextTick(() => this.flush());
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const queued = this.queue;
    this.queue = [];
    if (queued.length === 1 || this.client.isCluster) {
      for (const q of queued) this.command(q).then(q.resolve, q.reject);
      return;
    }
    for (let i = 0; i < queued.length; i += PIPELINE_CHUNK)
      this.sendPipeline(queued.slice(i, i + PIPELINE_CHUNK));
  }

  private command(q: Queued): Promise<unknown> {
    return q.op === 'reserve'
      ? this.client.call('SET', [q.key, 'r', 'NX', 'GET', 'PX', q.ms])
      : this.client.set(q.key, 'd', 'PX', q.ms);
  }

  private sendPipeline(queued: Queued[]): void {
    const pipeline = this.client.pipeline();
    for (const q of queued) {
      if (q.op === 'reserve') pipeline.call('SET', [q.key, 'r', 'NX', 'GET', 'PX', q.ms]);
      else pipeline.set(q.key, 'd', 'PX', q.ms);
    }
    pipeline.exec().then(
      (replies) => {
        queued.forEach((q, i) => {
          const [err, value] = replies?.[i] ?? [new Error('no reply in the pipeline'), undefined];
          if (err) q.reject(err);
          else q.resolve(value);
        });
      },
      (err: unknown) => {
        for (const q of queued) q.reject(err);
      },
    );
  }
}
