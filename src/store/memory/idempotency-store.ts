import type { IdempotencyStore, ReserveResult } from '../idempotency-store.js';

interface Record {
  state: 'reserved' | 'done';
  expiresAt: number;
}

/** Idempotency store in process memory; expired keys are swept lazily and on a bounded scan. */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, Record>();
  private readonly now: () => number;
  private writes = 0;

  /** @param options.now clock for tests; defaults to Date.now. */
  constructor(options: { now?: () => number } = {}) {
    this.now = options.now ?? Date.now;
  }

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const now = this.now();
    const r = this.records.get(key);
    if (r && r.expiresAt > now) return r.state === 'done' ? 'done' : 'in-progress';
    this.set(key, { state: 'reserved', expiresAt: now + leaseMs });
    return 'acquired';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    this.set(key, { state: 'done', expiresAt: this.now() + ttlMs });
  }

  async release(key: string): Promise<void> {
    if (this.records.get(key)?.state === 'reserved') this.records.delete(key);
  }

  /** Number of live keys (for tests and stats). */
  get size(): number {
    return this.records.size;
  }

  private set(key: string, record: Record): void {
    this.records.delete(key); // keep insertion order ~ expiry order for the sweep
    this.records.set(key, record);
    if (++this.writes % 1024 === 0) this.sweep();
  }

  private sweep(): void {
    const now = this.now();
    let scanned = 0;
    for (const [key, r] of this.records) {
      if (++scanned > 4096) break;
      if (r.expiresAt <= now) this.records.delete(key);
    }
  }
}
