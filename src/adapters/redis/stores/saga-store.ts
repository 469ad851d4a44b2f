import { ClosedError, ConfigError } from '../../../core/errors.js';
import { SagaLeaseLostError } from '../../../saga/errors.js';
import { deserializeRecord, serializeRecord, type SagaRecord } from '../../../saga/record.js';
import type { SagaCommitOptions, SagaFilter, SagaPage, SagaStore } from '../../../saga/store.js';
import { Connections, type RedisClient } from '../connection.js';
import { validateConnectionOptions, type RedisConnectionOptions } from '../options.js';

/*
 * Layout, all under one hash tag `{<prefix>:saga}` so the scripts and transactions touch one slot:
 *   <base>:s:<id>  hash: state (JSON), version, owner, until, type, status
 *   <base>:due     zset: id scored by wakeAt (only sagas a runner should look at)
 *   <base>:all     zset: id scored by createdAt (for list)
 * The scripts build saga keys from <base>:s: and the id; they stay in the declared keys' slot.
 */

const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'version', 0, 'type', ARGV[3], 'status', ARGV[4], 'owner', '', 'until', 0)
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) end
return 1
`;

const ACQUIRE = `
local v = redis.call('HMGET', KEYS[1], 'state', 'owner', 'until')
if not v[1] then return false end
if v[2] ~= '' and v[2] ~= ARGV[1] and tonumber(v[3]) > tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[3])
return v[1]
`;

const CLAIM = `
local limit = tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, limit * 4 + 100)
local types = {}
for i = 6, #ARGV do types[ARGV[i]] = true end
local out = {}
for _, id in ipairs(ids) do
  if #out >= limit then break end
  local k = ARGV[5] .. id
  local v = redis.call('HMGET', k, 'state', 'owner', 'until', 'type')
  if v[1] and types[v[4]] and (v[2] == '' or tonumber(v[3]) <= tonumber(ARGV[2])) then
    redis.call('HSET', k, 'owner', ARGV[1], 'until', ARGV[3])
    out[#out + 1] = v[1]
  end
end
return out
`;

const COMMIT = `
local v = redis.call('HMGET', KEYS[1], 'version', 'owner')
if not v[1] or tonumber(v[1]) ~= tonumber(ARGV[3]) or v[2] ~= ARGV[2] then return 0 end
if ARGV[8] ~= '' then
  for _, command in ipairs(cjson.decode(ARGV[8])) do redis.call(unpack(command)) end
end
local owner = ARGV[2]
if ARGV[7] == '0' then owner = '' end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'version', tonumber(ARGV[3]) + 1, 'status', ARGV[5], 'owner', owner, 'until', ARGV[7])
if ARGV[6] == '' then redis.call('ZREM', KEYS[2], ARGV[1]) else redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) end
return 1
`;

const RENEW = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'until', ARGV[2])
return 1
`;

const RELEASE = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'until', 0)
return 1
`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/**
 * What effects receive from the Redis store: `call('HINCRBY', key, field, 1)` queues a command that
 * runs inside the commit's script, after the lease check and with the state write, atomically.
 */
export interface RedisSagaTx {
  call(command: string, ...args: (string | number)[]): void;
}

/**
 * Saga store on Redis. Every operation is one Lua script, so it is atomic and one round trip. A
 * commit checks the lease and version, then runs the step's effect commands and writes the state in
 * the same script: the effects and the step's completion are applied together or not at all (ADR
 * 0802 explains why this is a script rather than WATCH/MULTI). Redis does not roll back a command
 * that fails at run time, so effects should be plain writes (SET, HSET, HINCRBY, XADD, ...). In a
 * cluster, effect keys must carry the hash tag `{<prefix>:saga}`.
 */
export class RedisSagaStore implements SagaStore<RedisSagaTx> {
  readonly name = 'redis';
  private readonly base: string;
  private readonly due: string;
  private readonly all: string;
  private readonly scripts: Record<'create' | 'acquire' | 'claim' | 'commit' | 'renew' | 'release', Script>;
  private closed = false;

  constructor(
    private readonly client: RedisClient,
    prefix: string,
    private readonly connections?: Connections,
  ) {
    this.base = `{${prefix}:saga}`;
    this.due = `${this.base}:due`;
    this.all = `${this.base}:all`;
    const define = (name: string, lua: string, keys: number): Script => {
      client.defineCommand(name, { lua, numberOfKeys: keys });
      return (client as unknown as Record<string, Script>)[name]!.bind(client);
    };
    this.scripts = {
      create: define('herald_saga_create', CREATE, 3),
      acquire: define('herald_saga_acquire', ACQUIRE, 1),
      claim: define('herald_saga_claim', CLAIM, 1),
      commit: define('herald_saga_commit', COMMIT, 2),
      renew: define('herald_saga_renew', RENEW, 1),
      release: define('herald_saga_release', RELEASE, 1),
    };
  }

  /** The key of a saga's hash (for tests and tools). */
  key(id: string): string {
    return `${this.base}:s:${id}`;
  }

  async create(record: SagaRecord): Promise<boolean> {
    this.check();
    const state = serializeRecord({ ...record, version: 0 });
    const created = await this.scripts.create(
      this.key(record.id),
      this.due,
      this.all,
      record.id,
      state,
      record.type,
      record.status,
      record.createdAt,
      record.wakeAt === null ? '' : record.wakeAt,
    );
    if (created !== 1) return false;
    record.version = 0;
    return true;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    this.check();
    const [state, owner, until] = await this.client.hmget(this.key(id), 'state', 'owner', 'until');
    return state ? toRecord(state, owner ?? null, until ?? null) : undefined;
  }

  async acquire(id: string, owner: string, leaseMs: number): Promise<SagaRecord | undefined> {
    this.check();
    const now = Date.now();
    const state = (await this.scripts.acquire(this.key(id), owner, now, now + leaseMs)) as string | null;
    return state ? deserializeRecord(state, { owner, until: now + leaseMs }) : undefined;
  }

  async claimDue(
    owner: string,
    leaseMs: number,
    limit: number,
    types: readonly string[],
  ): Promise<SagaRecord[]> {
    this.check();
    if (types.length === 0 || limit <= 0) return [];
    const now = Date.now();
    const states = (await this.scripts.claim(
      this.due,
      owner,
      now,
      now + leaseMs,
      limit,
      `${this.base}:s:`,
      ...types,
    )) as string[];
    return states.map((s) => deserializeRecord(s, { owner, until: now + leaseMs }));
  }

  async commit(record: SagaRecord, owner: string, options: SagaCommitOptions<RedisSagaTx>): Promise<void> {
    this.check();
    const version = record.version + 1;
    const until = options.leaseMs > 0 ? Date.now() + options.leaseMs : 0;
    const state = serializeRecord({ ...record, version });
    const wake = record.wakeAt === null ? '' : record.wakeAt;
    const commands: (string | number)[][] = [];
    const tx: RedisSagaTx = { call: (command, ...args) => void commands.push([command, ...args]) };
    for (const effect of options.effects ?? []) effect(tx);
    const ok = await this.scripts.commit(
      this.key(record.id),
      this.due,
      record.id,
      owner,
      record.version,
      state,
      record.status,
      wake,
      until,
      commands.length > 0 ? JSON.stringify(commands) : '',
    );
    if (ok !== 1) throw new SagaLeaseLostError(record.id, owner);
    record.version = version;
    if (until > 0) record.lease = { owner, until };
    else delete record.lease;
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    this.check();
    return (await this.scripts.renew(this.key(id), owner, Date.now() + leaseMs)) === 1;
  }

  async release(id: string, owner: string): Promise<void> {
    this.check();
    await this.scripts.release(this.key(id), owner);
  }

  async list(filter: SagaFilter = {}, page: { limit?: number; cursor?: string } = {}): Promise<SagaPage> {
    this.check();
    const limit = page.limit ?? 50;
    const after = page.cursor ? decodeCursor(page.cursor) : undefined;
    const items: { record: SagaRecord; createdAt: number }[] = [];
    const BATCH = 200;
    for (let offset = 0; items.length <= limit; offset += BATCH) {
      const flat = await this.client.zrevrangebyscore(
        this.all,
        after ? after[0] : '+inf',
        '-inf',
        'WITHSCORES',
        'LIMIT',
        offset,
        BATCH,
      );
      const batch: { id: string; at: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const id = flat[i]!;
        const at = Number(flat[i + 1]);
        if (after && at === after[0] && id >= after[1]) continue;
        batch.push({ id, at });
      }
      const pipe = this.client.pipeline();
      for (const b of batch) pipe.hmget(this.key(b.id), 'state', 'owner', 'until', 'type', 'status');
      const rows = (await pipe.exec()) ?? [];
      rows.forEach(([err, v], i) => {
        if (err || items.length > limit) return;
        const [state, owner, until, type, status] = v as (string | null)[];
        if (!state) return;
        if (filter.type && type !== filter.type) return;
        if (filter.status && status !== filter.status) return;
        items.push({ record: toRecord(state, owner ?? null, until ?? null), createdAt: batch[i]!.at });
      });
      if (flat.length < BATCH * 2) break;
    }
    if (items.length <= limit) return { items: items.map((i) => i.record) };
    const last = items[limit - 1]!;
    return {
      items: items.slice(0, limit).map((i) => i.record),
      nextCursor: Buffer.from(JSON.stringify([last.createdAt, last.record.id])).toString('base64url'),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.connections?.close();
  }

  private check(): void {
    if (this.closed) throw new ClosedError('RedisSagaStore');
  }
}

/** A saga store on its own Redis connection: `redisSagaStore({ url, prefix })`. */
export function redisSagaStore(options: RedisConnectionOptions = {}): RedisSagaStore {
  const prefix = validateConnectionOptions(options);
  const connections = new Connections(options, 'herald redis saga store');
  return new RedisSagaStore(connections.client, prefix, connections);
}

function toRecord(state: string, owner: string | null, until: string | null): SagaRecord {
  return deserializeRecord(state, owner ? { owner, until: Number(until) } : undefined);
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown;
    if (Array.isArray(v) && typeof v[0] === 'number' && typeof v[1] === 'string') return [v[0], v[1]];
  } catch {
    // fall through to the error
  }
  throw new ConfigError('cursor', `is not a cursor returned by list: ${JSON.stringify(cursor)}`);
}
