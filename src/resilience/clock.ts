/**
 * Time source for every policy. Injecting it keeps the policies testable without wall-clock sleeps and
 * lets a breaker snapshot taken in one process be restored in another (the system clock is epoch based).
 */

/** Opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = unknown;

/** Time source and timer factory. */
export interface Clock {
  /** Milliseconds, monotonic, epoch-aligned for the system clock (fractions allowed). */
  now(): number;
  /** Schedules `fn` after `ms`; the timer must not keep the process alive on its own. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

const origin = performance.timeOrigin;

/** Real time: `performance.timeOrigin + performance.now()` (monotonic yet comparable to `Date.now()`). */
export const systemClock: Clock = {
  now: () => origin + performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    // Policies arm timers on behalf of calls whose own I/O keeps the process alive; a pending deadline
    // must never be the only reason a process cannot exit.
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface ManualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when told to. Meant for tests of code that uses the policies:
 * `advance(ms)` runs due timers in deadline order and lets promise callbacks settle in between.
 */
export class ManualClock implements Clock {
  private time: number;
  private seq = 0;
  private timers: ManualTimer[] = [];

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle && typeof handle === 'object') (handle as ManualTimer).cancelled = true;
  }

  /** Number of timers still pending. */
  get pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    await flush();
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.time = Math.max(this.time, next.at);
      next.cancelled = true;
      next.fn();
      await flush();
    }
    this.time = target;
    this.timers = this.timers.filter((t) => !t.cancelled);
    await flush();
  }

  /** Moves time without firing timers (for tests of lazily evaluated state). */
  set(ms: number): void {
    this.time = ms;
  }

  private nextDue(target: number): ManualTimer | undefined {
    let best: ManualTimer | undefined;
    for (const t of this.timers) {
      if (t.cancelled || t.at > target) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}

/** Lets queued promise reactions run (several turns, since async functions chain a few hops). */
export async function flush(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}
