/**
 * Sliding windows of call outcomes with constant memory: a ring of outcomes (count based) or a ring of
 * per-bucket counters (time based). Neither grows with traffic (ADR 0102).
 */

/** Outcome bits stored per call. */
export const FAILED = 1;
export const SLOW = 2;

/** Serialisable window state. */
export type WindowSnapshot =
  | { type: 'count'; size: number; ring: number[]; pos: number; filled: number }
  | {
      type: 'time';
      durationMs: number;
      buckets: number;
      idx: number;
      calls: number[];
      failures: number[];
      slow: number[];
    };

export interface SlidingWindow {
  calls: number;
  failures: number;
  slow: number;
  /** Drops what fell out of the window by `now` (no-op for count windows). */
  advance(now: number): void;
  record(now: number, bits: number): void;
  reset(): void;
  snapshot(): WindowSnapshot;
  restore(s: WindowSnapshot): void;
}

/** The last `size` calls. */
export class CountWindow implements SlidingWindow {
  calls = 0;
  failures = 0;
  slow = 0;
  private readonly ring: Uint8Array;
  private pos = 0;

  constructor(readonly size: number) {
    this.ring = new Uint8Array(size);
  }

  advance(): void {}

  record(_now: number, bits: number): void {
    if (this.calls === this.size) {
      const old = this.ring[this.pos]!;
      this.failures -= old & FAILED;
      this.slow -= (old & SLOW) >> 1;
    } else this.calls++;
    this.ring[this.pos] = bits;
    this.failures += bits & FAILED;
    this.slow += (bits & SLOW) >> 1;
    this.pos = this.pos + 1 === this.size ? 0 : this.pos + 1;
  }

  reset(): void {
    this.ring.fill(0);
    this.pos = this.calls = this.failures = this.slow = 0;
  }

  snapshot(): WindowSnapshot {
    return { type: 'count', size: this.size, ring: Array.from(this.ring), pos: this.pos, filled: this.calls };
  }

  restore(s: WindowSnapshot): void {
    this.reset();
    if (s.type !== 'count' || s.size !== this.size) return;
    // Replay oldest → newest so the counters are rebuilt by the same code that maintains them.
    const start = s.filled === s.size ? s.pos : 0;
    for (let i = 0; i < s.filled; i++) this.record(0, s.ring[(start + i) % s.size] ?? 0);
  }
}

/** The calls of the last `durationMs`, in `buckets` slices (the oldest slice expires as a whole). */
export class TimeWindow implements SlidingWindow {
  calls = 0;
  failures = 0;
  slow = 0;
  private readonly bucketMs: number;
  private readonly bCalls: Uint32Array;
  private readonly bFailures: Uint32Array;
  private readonly bSlow: Uint32Array;
  private idx = Number.MIN_SAFE_INTEGER;
  /** Ring slot of bucket `idx`. */
  private slot = 0;
  /**
   * Start time of bucket `idx + 1`: until then `advance` has nothing to do, so the common case is one
   * comparison instead of a division, a floor and two modulos on every recorded call.
   */
  private nextBucketAt = -Infinity;

  constructor(
    readonly durationMs: number,
    readonly buckets: number,
  ) {
    this.bucketMs = durationMs / buckets;
    this.bCalls = new Uint32Array(buckets);
    this.bFailures = new Uint32Array(buckets);
    this.bSlow = new Uint32Array(buckets);
  }

  advance(now: number): void {
    if (now < this.nextBucketAt) return;
    const idx = Math.floor(now / this.bucketMs);
    if (idx <= this.idx) return;
    const steps = Math.min(idx - this.idx, this.buckets);
    for (let i = 1; i <= steps; i++) {
      const slot = (((idx - steps + i) % this.buckets) + this.buckets) % this.buckets;
      this.calls -= this.bCalls[slot]!;
      this.failures -= this.bFailures[slot]!;
      this.slow -= this.bSlow[slot]!;
      this.bCalls[slot] = this.bFailures[slot] = this.bSlow[slot] = 0;
    }
    this.moveTo(idx);
  }

  record(now: number, bits: number): void {
    this.advance(now);
    const slot = this.slot;
    this.bCalls[slot]!++;
    this.calls++;
    if (bits & FAILED) {
      this.bFailures[slot]!++;
      this.failures++;
    }
    if (bits & SLOW) {
      this.bSlow[slot]!++;
      this.slow++;
    }
  }

  private moveTo(idx: number): void {
    this.idx = idx;
    this.slot = ((idx % this.buckets) + this.buckets) % this.buckets;
    this.nextBucketAt = (idx + 1) * this.bucketMs;
  }

  reset(): void {
    this.bCalls.fill(0);
    this.bFailures.fill(0);
    this.bSlow.fill(0);
    this.calls = this.failures = this.slow = 0;
    this.idx = Number.MIN_SAFE_INTEGER;
    this.slot = 0;
    this.nextBucketAt = -Infinity;
  }

  snapshot(): WindowSnapshot {
    return {
      type: 'time',
      durationMs: this.durationMs,
      buckets: this.buckets,
      idx: this.idx,
      calls: Array.from(this.bCalls),
      failures: Array.from(this.bFailures),
      slow: Array.from(this.bSlow),
    };
  }

  restore(s: WindowSnapshot): void {
    this.reset();
    if (s.type !== 'time' || s.buckets !== this.buckets || s.durationMs !== this.durationMs) return;
    this.moveTo(s.idx);
    for (let i = 0; i < this.buckets; i++) {
      this.bCalls[i] = s.calls[i] ?? 0;
      this.bFailures[i] = s.failures[i] ?? 0;
      this.bSlow[i] = s.slow[i] ?? 0;
      this.calls += this.bCalls[i]!;
      this.failures += this.bFailures[i]!;
      this.slow += this.bSlow[i]!;
    }
  }
}
