import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { Emitter } from './events.js';
import {
  BasePolicy,
  RUN,
  SignalScope,
  type CallContext,
  type CommonOptions,
  type ResilienceMetrics,
} from './policy.js';
import { int, num } from './validate.js';

export interface HedgeOptions extends CommonOptions {
  /** Delay before sending each extra attempt while the earlier ones are still pending. */
  delayMs: number;
  /** Extra attempts at most. Default 1. */
  maxHedges?: number;
  clock?: Clock;
}

export interface HedgeEvent {
  /** 1-based number of the attempt being started (2 for the first hedge). */
  attempt: number;
  /** Why it starts: the delay elapsed, or every earlier attempt already failed. */
  reason: 'delay' | 'failure';
}

/** Abort reason given to attempts that lost the race. */
export function hedgeLostReason(): DOMException {
  return new DOMException('Another hedged attempt finished first', 'AbortError');
}

/**
 * Hedging: if an attempt has not finished after `delayMs`, starts another one in parallel and takes
 * the first success; the losers' signals are aborted. An attempt that fails early triggers the next
 * one at once. Only for idempotent work.
 *
 * @example
 * const hedge = new Hedge({ delayMs: 50 });
 * const user = await hedge.execute(({ signal }) => replicaRead(id, { signal }));
 */
export class Hedge extends BasePolicy {
  readonly name: string;
  readonly delayMs: number;
  readonly maxHedges: number;
  private readonly clock: Clock;
  private readonly metrics: ResilienceMetrics | undefined;
  private readonly hedges = new Emitter<HedgeEvent>();
  /** Subscribes to extra attempts being started. */
  readonly onHedge = this.hedges.on;

  constructor(options: HedgeOptions) {
    super();
    this.name = options.name ?? 'hedge';
    this.delayMs = num('Hedge', 'delayMs', options.delayMs, 0);
    this.maxHedges = int('Hedge', 'maxHedges', options.maxHedges ?? 1, 1);
    this.clock = options.clock ?? systemClock;
    this.metrics = options.metrics;
  }

  [RUN](ctx: CallContext, depth: number): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const scopes: SignalScope[] = [];
      const outer = ctx.abortSignal();
      let started = 0;
      let pending = 0;
      let settled = false;
      let timer: TimerHandle | undefined;
      const finish = (): void => {
        settled = true;
        if (timer !== undefined) this.clock.clearTimeout(timer);
        if (outer) outer.removeEventListener('abort', onAbort);
        for (const s of scopes) s.dispose();
      };
      const onAbort = (): void => {
        if (settled) return;
        finish();
        reject(outer!.reason);
      };
      const launch = (reason: HedgeEvent['reason']): void => {
        timer = undefined;
        const scope = new SignalScope(ctx.scope, ctx.outer);
        scopes.push(scope);
        const branch = ctx.fork(scope);
        started++;
        pending++;
        if (started > 1) {
          if (this.hedges.size > 0) this.hedges.emit({ attempt: started, reason });
          this.metrics?.record({ policy: 'hedge', name: this.name, event: 'hedge' });
        }
        if (started <= this.maxHedges) timer = this.clock.setTimeout(() => launch('delay'), this.delayMs);
        branch.invoke(depth + 1).then(
          (value) => {
            pending--;
            if (settled) return;
            finish();
            for (const s of scopes) if (s !== scope) s.abort(hedgeLostReason());
            resolve(value);
          },
          (err: unknown) => {
            pending--;
            if (settled) return;
            if (pending > 0) return;
            if (started <= this.maxHedges) {
              if (timer !== undefined) this.clock.clearTimeout(timer);
              launch('failure');
              return;
            }
            finish();
            reject(err);
          },
        );
      };
      if (outer) outer.addEventListener('abort', onAbort, { once: true });
      launch('delay');
    });
  }
}
