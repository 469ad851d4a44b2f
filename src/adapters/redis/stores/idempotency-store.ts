import type { IdempotencyStore, ReserveResult } from '../../../store/idempotency-store.js';
import type { RedisClient } from '../connection.js';

/*
 * One string key per idempotency key: `r` while reserved (SET NX PX lease), `d` once done (PX ttl).
 * The reserves and completes of one event-loop turn leave as one call of BATCH (ADR 0310), whose
 * reply has one element per key: for a reserve the value found (`r`, `d`) or 0 when the key was
 * free or held a foreign value (both become a lease; the SET NX cannot overwrite the latter, so
 * the script does); for a complete 1. Keys are independent: each one's command runs under pcall,
 * so a key holding another type fails alone, as a separate command would, not the whole batch.
 * Release compares before deleting, so it stays a script of its own.
 */
const BATCH = `
local out = {}
for i = 1, #KEYS do
  local ms = ARGV[i * 2]
  if ARGV[i * 2 - 1] == 'r' then
    local v = redis.pcall('SET', KEYS[i], 'r', 'NX', 'GET', 'PX', ms)
    if type(v) == 'table' and v.err then out[i] = v
    elseif v == false then out[i] = 0
    elseif v == 'r' or v == 'd' then out[i] = v
    else
      redis.call('SET', KEYS[i], 'r', 'PX', ms)
      out[i] = 0
    end
  else
    local ok = redis.pcall('SET', KEYS[i], 'd', 'PX', ms)
    if type(ok) == 'table' and ok.err then out[i] = ok else out[i] = 1 end
  end
end
return out
`;

/** A value Herald did not write, found by a lone reserve: overwritten, as the SET NX cannot. */
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
type BatchScript = (keyCount: number, ...keysAndArgs: (string | number)[]) => Promise<unknown[]>;

interface Queued {
  readonly op: 'reserve' | 'complete';
  readonly key: string;
  readonly ms: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/** Most keys in one batch call. */
const BATCH_CHUNK = 1000;

/**
 * Idempotency store on Redis; every key expires by itself (PX), nothing needs sweeping.
 *
 * The consumer calls `reserve` and `complete` once per event; the calls made in one turn of the
 * event loop (the handlers of a fetched batch start together, and finish together) leave as one
 * script call, sent on `process.nextTick` (after the turn's promise jobs, before any further I/O):
 * one command for the client to build and one reply to decode, instead of one each (ADR 0310).
 * Each call keeps its own result and error, so the semantics are those of separate commands. In a
 * cluster the keys spread over slots, so the calls go out one by one there.
 */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly batchScript: BatchScript;
  private readonly reserveScript: Script;
  private readonly releaseScript: Script;
  private queue: Queued[] = [];
  private flushScheduled = false;

  /** @param prefix key prefix, e.g. `herald:idem:` (the stores factory adds a hash tag per key). */
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
  ) {
    client.defineCommand('herald_idem_batch', { lua: BATCH });
    client.defineCommand('herald_idem_reserve', { lua: RESERVE, numberOfKeys: 1 });
    client.defineCommand('herald_idem_release', { lua: RELEASE, numberOfKeys: 1 });
    const commands = client as unknown as Record<string, Script>;
    this.batchScript = (commands.herald_idem_batch as unknown as BatchScript).bind(client);
    this.reserveScript = commands.herald_idem_reserve!.bind(client);
    this.releaseScript = commands.herald_idem_release!.bind(client);
  }

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const ms = Math.max(1, Math.ceil(leaseMs));
    const found = await this.enqueue('reserve', this.key(key), ms);
    // 0 from the batch script (free, or a foreign value it replaced); null from a lone SET NX GET.
    if (found === 0 || found === null) return 'acquired';
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
    for (let i = 0; i < queued.length; i += BATCH_CHUNK) this.sendBatch(queued.slice(i, i + BATCH_CHUNK));
  }

  /** A lone call: the plain command, without Lua (a foreign value found is left to `reserve`). */
  private command(q: Queued): Promise<unknown> {
    return q.op === 'reserve'
      ? this.client.call('SET', [q.key, 'r', 'NX', 'GET', 'PX', q.ms])
      : this.client.set(q.key, 'd', 'PX', q.ms);
  }

  private sendBatch(queued: Queued[]): void {
    const args: (string | number)[] = new Array<string | number>(queued.length * 3);
    const n = queued.length;
    for (let i = 0; i < n; i++) {
      const q = queued[i]!;
      args[i] = q.key;
      args[n + i * 2] = q.op === 'reserve' ? 'r' : 'd';
      args[n + i * 2 + 1] = q.ms;
    }
    this.batchScript(n, ...args).then(
      (replies) => {
        for (let i = 0; i < n; i++) {
          const reply = replies[i];
          // A key's own error (e.g. WRONGTYPE) comes back in its element, as from a pipeline.
          if (reply instanceof Error) queued[i]!.reject(reply);
          else queued[i]!.resolve(reply);
        }
      },
      (err: unknown) => {
        for (const q of queued) q.reject(err);
      },
    );
  }
}
