import type { IdempotencyStore, ReserveResult } from '../../../store/idempotency-store.js';
import type { StoreHandles } from './handles.js';

interface Entry {
  /** `r` reserved, `d` done. */
  s: 'r' | 'd';
  /** Epoch ms after which the entry no longer counts. */
  exp: number;
}

/**
 * Idempotency on the KV bucket `<ns>-idempotency`, one entry per key. Every change is a
 * compare-and-set on the entry's revision (`create` for a new key, `update(rev)` otherwise), so
 * exactly one of several concurrent reservations wins. Lease and TTL are expiry times inside the
 * entry (per-key TTLs need a newer server); the bucket's `max_age` bounds how long any entry is
 * kept. See docs/adr/0902-nats-stores.md for the atomicity story.
 */
export class NatsIdempotencyStore implements IdempotencyStore {
  constructor(private readonly h: StoreHandles) {}

  async reserve(key: string, leaseMs: number): Promise<ReserveResult> {
    const kv = (await this.h.get()).idempotency;
    const k = encodeKey(key);
    const value = JSON.stringify({
      s: 'r',
      exp: Date.now() + Math.max(1, Math.ceil(leaseMs)),
    } satisfies Entry);
    for (let i = 0; i < 10; i++) {
      // The common case first: a key nobody has seen, one round trip.
      try {
        await kv.create(k, value);
        return 'acquired';
      } catch {
        // there is an entry (or a deleted one): look at it
      }
      const current = await kv.get(k);
      if (!current || current.operation !== 'PUT' || current.length === 0) continue;
      const entry = JSON.parse(current.string()) as Entry;
      if (entry.exp > Date.now()) return entry.s === 'd' ? 'done' : 'in-progress';
      try {
        await kv.update(k, value, current.revision);
        return 'acquired';
      } catch {
        // changed since we read it: look again
      }
    }
    return 'in-progress';
  }

  async complete(key: string, ttlMs: number): Promise<void> {
    const kv = (await this.h.get()).idempotency;
    await kv.put(encodeKey(key), JSON.stringify({ s: 'd', exp: Date.now() + Math.max(1, Math.ceil(ttlMs)) }));
  }

  async release(key: string): Promise<void> {
    const kv = (await this.h.get()).idempotency;
    const k = encodeKey(key);
    const current = await kv.get(k);
    if (!current || current.operation !== 'PUT' || current.length === 0) return;
    if ((JSON.parse(current.string()) as Entry).s !== 'r') return;
    await kv.delete(k, { previousSeq: current.revision }).catch(() => undefined); // a completion in between wins
  }
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: any idempotency key is stored as base64url. */
export function encodeKey(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url') || '_';
}
