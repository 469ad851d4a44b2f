import { BulkheadRejectedError } from './errors.js';
import { Emitter } from './events.js';
import {
  BasePolicy,
  IDLE_CONTEXT,
  RUN,
  isDeferred,
  type CallContext,
  type CommonOptions,
  type ExecuteContext,
  type ExecuteOptions,
  type ResilienceMetrics,
} from './policy.js';
import { int } from './validate.js';

export interface BulkheadOptions extends CommonOptions {
  /** Calls running at once. Default 10. */
  maxConcurrent?: number;
  /** Calls waiting for a slot; beyond it calls are rejected. Default 0 (no queue). */
  maxQueue?: number;
}

export interface BulkheadRejectEvent {
  running: number;
  queued: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

/**
 * Caps concurrency, with a bounded FIFO queue. A freed slot is handed straight to the oldest waiter,
 * so newcomers cannot overtake the queue and starve it; a waiter whose signal aborts leaves the queue
 * at once and never takes a slot.
 *
 * @example
 * const bulkhead = new Bulkhead({ maxConcurrent: 8, maxQueue: 100 });
 * await bulkhead.execute(() => db.query(sql));
 */
export class Bulkhead extends BasePolicy {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  private readonly metrics: ResilienceMetrics | undefined;
  private active = 0;
  private queued = 0;
  private head: Waiter | undefined = undefined;
  private tail: Waiter | undefined = undefined;
  private readonly rejects = new Emitter<BulkheadRejectEvent>();
  /** Subscribes to rejected calls. */
  readonly onReject = this.rejects.on;

  constructor(options: BulkheadOptions = {}) {
    super();
    this.name = options.name ?? 'bulkhead';
    this.maxConcurrent = int('Bulkhead', 'maxConcurrent', options.maxConcurrent ?? 10, 1);
    this.maxQueue = int('Bulkhead', 'maxQueue', options.maxQueue ?? 0, 0);
    this.metrics = options.metrics;
  }

  /** Calls holding a slot. */
  get running(): number {
    return this.active;
  }

  /** Calls waiting for a slot. */
  get queueLength(): number {
    return this.queued;
  }

  /**
   * Settlement handlers of a call holding a slot, bound once: releasing needs no per-call state, so
   * a call allocates no closure and no async frame for it (ADR 0104).
   */
  private readonly released = (value: unknown): unknown => {
    this.release();
    return value;
  };
  private readonly releasedOnError = (err: unknown): never => {
    this.release();
    throw err;
  };

  override execute<T>(fn: (ctx: ExecuteContext) => Promise<T> | T, opts?: ExecuteOptions): Promise<T> {
    // A free slot and no caller signal: nothing can make this call wait or abort, so it needs neither
    // a CallContext nor the chain machinery.
    if (opts?.signal === undefined && this.active < this.maxConcurrent) {
      this.active++;
      let r: unknown;
      try {
        r = fn(IDLE_CONTEXT);
      } catch (err) {
        this.release();
        return Promise.reject(err);
      }
      return this.hold(r) as Promise<T>;
    }
    return super.execute(fn, opts);
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    if (this.active < this.maxConcurrent) {
      this.active++;
      return this.enter(ctx, depth);
    }
    if (this.queued < this.maxQueue) return this.wait(ctx, depth);
    if (this.rejects.size > 0) this.rejects.emit({ running: this.active, queued: this.queued });
    this.metrics?.record({ policy: 'bulkhead', name: this.name, event: 'rejected' });
    return Promise.reject(new BulkheadRejectedError(this.name, this.maxConcurrent, this.maxQueue));
  }

  /** Runs the rest of the chain in a slot the caller already holds; the slot is freed when it settles. */
  private enter(ctx: CallContext, depth: number): Promise<unknown> {
    let r: unknown;
    try {
      r = ctx.call(depth + 1);
    } catch (err) {
      this.release();
      return Promise.reject(err);
    }
    return this.hold(r);
  }

  private hold(r: unknown): Promise<unknown> {
    if (isDeferred(r)) return Promise.resolve(r).then(this.released, this.releasedOnError);
    // A plain value: the function already finished, so the slot is free before anyone awaits.
    this.release();
    return Promise.resolve(r);
  }

  private async wait(ctx: CallContext, depth: number): Promise<unknown> {
    await this.enqueue(ctx.abortSignal());
    return this.enter(ctx, depth);
  }

  private enqueue(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal, onAbort: undefined, prev: this.tail, next: undefined };
      if (signal) {
        w.onAbort = () => {
          this.unlink(w);
          reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      if (this.tail) this.tail.next = w;
      else this.head = w;
      this.tail = w;
      this.queued++;
    });
  }

  private unlink(w: Waiter): void {
    if (w.prev) w.prev.next = w.next;
    else this.head = w.next;
    if (w.next) w.next.prev = w.prev;
    else this.tail = w.prev;
    w.prev = w.next = undefined;
    this.queued--;
  }

  private release(): void {
    const w = this.head;
    if (!w) {
      this.active--;
      return;
    }
    // Hand the slot over without decrementing: `active` stays at the cap, so no newcomer can barge in.
    this.unlink(w);
    if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
    w.resolve();
  }
}
