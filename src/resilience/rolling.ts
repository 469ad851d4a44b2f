/**
 * @internal Rolling time buckets of numeric columns (a fixed ring: constant memory). Bucket `i` covers
 * `[i × bucketMs, (i + 1) × bucketMs)`; advancing clears the buckets that fell out of the window.
 */
export class RollingBuckets {
  readonly bucketMs: number;
  private readonly data: Float64Array;
  private idx = Number.MIN_SAFE_INTEGER;

  constructor(
    readonly windowMs: number,
    readonly buckets: number,
    readonly columns: number,
  ) {
    this.bucketMs = windowMs / buckets;
    this.data = new Float64Array(buckets * columns);
  }

  advance(now: number): void {
    const idx = Math.floor(now / this.bucketMs);
    if (idx <= this.idx) return;
    const steps = Math.min(idx - this.idx, this.buckets);
    for (let i = 1; i <= steps; i++) {
      const slot = this.slot(idx - steps + i);
      this.data.fill(0, slot * this.columns, (slot + 1) * this.columns);
    }
    this.idx = idx;
  }

  add(now: number, column: number, value: number): void {
    this.advance(now);
    this.data[this.slot(this.idx) * this.columns + column]! += value;
  }

  /** Sum of `column` over the window (call `advance` first). */
  sum(column: number): number {
    let s = 0;
    for (let b = 0; b < this.buckets; b++) s += this.data[b * this.columns + column]!;
    return s;
  }

  /** Value of `column` in the bucket `age` steps back from the current one (0 = current). */
  at(age: number, column: number): number {
    return this.data[this.slot(this.idx - age) * this.columns + column]!;
  }

  reset(): void {
    this.data.fill(0);
    this.idx = Number.MIN_SAFE_INTEGER;
  }

  private slot(i: number): number {
    return ((i % this.buckets) + this.buckets) % this.buckets;
  }
}
