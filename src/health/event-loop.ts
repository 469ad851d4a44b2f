import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface EventLoopMonitorOptions {
  /** Sampling resolution of the delay histogram. Default 20 ms. */
  readonly resolutionMs?: number;
  /** Length of one measuring window; the worst delay of the current and previous window counts. Default 5000 ms. */
  readonly windowMs?: number;
}

/**
 * Measures event-loop delay with `perf_hooks.monitorEventLoopDelay`. A /live handler can only run
 * once the loop is free again, so it must look back: it reports the worst delay of the current and
 * the previous window, which catches a loop that was blocked a moment ago.
 */
export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private previousMaxMs = 0;

  constructor(options: EventLoopMonitorOptions = {}) {
    this.histogram = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 20 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.previousMaxMs = this.currentMaxMs();
      this.histogram.reset();
    }, options.windowMs ?? 5000);
    this.timer.unref();
  }

  /** Worst event-loop delay observed recently, in milliseconds. */
  get delayMs(): number {
    return Math.max(this.previousMaxMs, this.currentMaxMs());
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private currentMaxMs(): number {
    // The histogram starts at a huge sentinel before its first sample.
    const max = this.histogram.count > 0 ? this.histogram.max / 1e6 : 0;
    return Math.round(max * 10) / 10;
  }
}
