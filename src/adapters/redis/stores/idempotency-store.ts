import type { IdempotencyStore, ReserveResult } from '../../../store/idempotency-store.js';
import type { RedisClient } from '../connection.js';

/*
 * One string key per idempotency key: `r` while reserved (SET NX PX lease), `d` once done (PX ttl).
 * The reserve and release checks run as scripts so the read and the write are one step.
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

/** Idempotency store on Redis; every key expires by itself (PX), nothing needs sweeping. */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly reserveScript: Script;
  private readonly releaseScript: Script;

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
    return (await this.reserveScript(this.key(key), Math.max(1, Math.ceil(leaseMs)))) as ReserveResult;
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    await this.client.set(this.key(key), 'd', 'PX', Math.max(1, Math.ceil(ttlMs)));
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
}
