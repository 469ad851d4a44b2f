import { ClosedError } from '../core/errors.js';
import { SagaLeaseLostError } from './errors.js';
import { cloneRecord, type SagaRecord } from './record.js';
import type { SagaCommitOptions, SagaFilter, SagaPage, SagaStore } from './store.js';

interface Row {
  record: SagaRecord;
  owner: string | undefined;
  until: number;
}

/**
 * What an effect receives from the memory store: it queues writes, applied with the commit only
 * when every effect returned (so a throwing effect leaves nothing behind).
 */
export interface MemorySagaTx {
  push(write: () => void): void;
}

/**
 * Saga store in process memory: for tests and single-process tools. State is lost on exit, so it
 * gives no crash recovery.
 */
export class MemorySagaStore implements SagaStore<MemorySagaTx> {
  readonly name = 'memory';
  private readonly rows = new Map<string, Row>();
  private closed = false;

  constructor(private readonly now: () => number = Date.now) {}

  async create(record: SagaRecord): Promise<boolean> {
    this.check();
    if (this.rows.has(record.id)) return false;
    const stored = cloneRecord(record);
    delete stored.lease;
    stored.version = 0;
    this.rows.set(record.id, { record: stored, owner: undefined, until: 0 });
    record.version = 0;
    return true;
  }

  async get(id: string): Promise<SagaRecord | undefined> {
    this.check();
    const row = this.rows.get(id);
    return row ? this.out(row) : undefined;
  }

  async acquire(id: string, owner: string, leaseMs: number): Promise<SagaRecord | undefined> {
    this.check();
    const row = this.rows.get(id);
    if (!row || !this.takeable(row, owner)) return undefined;
    row.owner = owner;
    row.until = this.now() + leaseMs;
    return this.out(row);
  }

  async claimDue(
    owner: string,
    leaseMs: number,
    limit: number,
    types: readonly string[],
  ): Promise<SagaRecord[]> {
    this.check();
    const now = this.now();
    const due = [...this.rows.values()]
      .filter(
        (r) =>
          r.record.wakeAt !== null &&
          r.record.wakeAt <= now &&
          types.includes(r.record.type) &&
          (r.owner === undefined || r.until <= now),
      )
      .sort((a, b) => a.record.wakeAt! - b.record.wakeAt!)
      .slice(0, limit);
    for (const row of due) {
      row.owner = owner;
      row.until = now + leaseMs;
    }
    return due.map((r) => this.out(r));
  }

  async commit(record: SagaRecord, owner: string, options: SagaCommitOptions<MemorySagaTx>): Promise<void> {
    this.check();
    const row = this.rows.get(record.id);
    if (!row || row.owner !== owner || row.record.version !== record.version) {
      throw new SagaLeaseLostError(record.id, owner);
    }
    const writes: (() => void)[] = [];
    const tx: MemorySagaTx = { push: (write) => void writes.push(write) };
    for (const effect of options.effects ?? []) effect(tx);
    for (const write of writes) write();
    const stored = cloneRecord(record);
    delete stored.lease;
    stored.version = record.version + 1;
    row.record = stored;
    if (options.leaseMs > 0) row.until = this.now() + options.leaseMs;
    else {
      row.owner = undefined;
      row.until = 0;
    }
    record.version = stored.version;
    if (row.owner) record.lease = { owner: row.owner, until: row.until };
    else delete record.lease;
  }

  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    this.check();
    const row = this.rows.get(id);
    if (!row || row.owner !== owner) return false;
    row.until = this.now() + leaseMs;
    return true;
  }

  async release(id: string, owner: string): Promise<void> {
    this.check();
    const row = this.rows.get(id);
    if (row && row.owner === owner) {
      row.owner = undefined;
      row.until = 0;
    }
  }

  async list(filter: SagaFilter = {}, page: { limit?: number; cursor?: string } = {}): Promise<SagaPage> {
    this.check();
    const limit = page.limit ?? 50;
    const all = [...this.rows.values()]
      .filter(
        (r) =>
          (!filter.type || r.record.type === filter.type) &&
          (!filter.status || r.record.status === filter.status),
      )
      .sort((a, b) => b.record.createdAt - a.record.createdAt || (a.record.id < b.record.id ? 1 : -1));
    const start = page.cursor ? Number(page.cursor) : 0;
    const items = all.slice(start, start + limit).map((r) => this.out(r));
    return start + limit < all.length ? { items, nextCursor: String(start + limit) } : { items };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private takeable(row: Row, owner: string, now = this.now()): boolean {
    return row.owner === undefined || row.owner === owner || row.until <= now;
  }

  private out(row: Row): SagaRecord {
    const record = cloneRecord(row.record);
    if (row.owner !== undefined) record.lease = { owner: row.owner, until: row.until };
    return record;
  }

  private check(): void {
    if (this.closed) throw new ClosedError('MemorySagaStore');
  }
}
