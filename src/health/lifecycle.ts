import { ConfigError, toError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { HealthProbes } from './probes.js';

/** What the lifecycle stops: a Herald, or anything with the same `stop()`. */
export interface Stoppable {
  stop(): Promise<void>;
}

export interface LifecycleOptions {
  /** Readiness probes to flip: /ready fails as soon as shutdown begins. */
  readonly probes?: HealthProbes;
  /**
   * Time between failing readiness and stopping consumers, so load balancers and Kubernetes
   * endpoints notice first. Default 5000 ms (0 in tests).
   */
  readonly readinessDelayMs?: number;
  /**
   * Upper bound on the whole stop (drain + plugin flush + close). Past it the process exits with
   * code 1; unfinished messages were never acked, so the broker redelivers them. Default 35 000 ms
   * (a little over Herald's default 30 s drain).
   */
  readonly drainTimeoutMs?: number;
  /** Run after Herald stopped, in order (close HTTP servers, pools, ...). */
  readonly onShutdown?: readonly (() => Promise<void> | void)[];
  /** Default SIGTERM and SIGINT. */
  readonly signals?: readonly NodeJS.Signals[];
  readonly logger?: Logger;
  /**
   * How to end the process; default `process.exit`. Pass `false` to leave the process running
   * after a graceful stop (e.g. when something else owns the exit).
   */
  readonly exit?: ((code: number) => void) | false;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

/** Exit code of a process ended by `signal`, by the shell convention 128 + signal number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (SIGNAL_NUMBERS[signal] ?? 15);
}

/**
 * Graceful shutdown: on the first signal readiness fails, after `readinessDelayMs` Herald stops
 * (consumers stop fetching and drain their in-flight handlers, plugins flush, transport and stores
 * close), then the `onShutdown` hooks run and the process exits 0. A second signal exits at once
 * with 128 + signal number (130 for SIGINT, 143 for SIGTERM).
 */
export class Lifecycle {
  private readonly target: Stoppable;
  private readonly options: LifecycleOptions;
  private readonly logger: Logger;
  private readonly readinessDelayMs: number;
  private readonly drainTimeoutMs: number;
  private readonly listeners = new Map<NodeJS.Signals, () => void>();
  private shuttingDown: Promise<void> | undefined;

  constructor(target: Stoppable, options: LifecycleOptions = {}) {
    if (typeof target?.stop !== 'function')
      throw new ConfigError('herald', 'must have a stop() method (a Herald instance)');
    this.target = target;
    this.options = options;
    this.logger = (options.logger ?? silentLogger).child({ component: 'lifecycle' });
    this.readinessDelayMs = options.readinessDelayMs ?? 5000;
    this.drainTimeoutMs = options.drainTimeoutMs ?? 35_000;
    for (const [field, value] of [
      ['readinessDelayMs', this.readinessDelayMs],
      ['drainTimeoutMs', this.drainTimeoutMs],
    ] as const) {
      if (!Number.isFinite(value) || value < 0)
        throw new ConfigError(field, `must be a number >= 0, got ${String(value)}`);
    }
  }

  /** Listens for the shutdown signals. Idempotent. */
  install(): this {
    for (const signal of this.options.signals ?? ['SIGTERM', 'SIGINT']) {
      if (this.listeners.has(signal)) continue;
      const listener = (): void => this.onSignal(signal);
      this.listeners.set(signal, listener);
      process.on(signal, listener);
    }
    return this;
  }

  /** Stops listening for signals. */
  uninstall(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener);
    this.listeners.clear();
  }

  /** True once shutdown began. */
  get stopping(): boolean {
    return this.shuttingDown !== undefined;
  }

  /**
   * Runs the shutdown sequence once (later calls return the same promise). Resolves when done;
   * rejects if a step failed or the drain timed out. Does not exit the process by itself.
   */
  shutdown(reason = 'shutdown requested'): Promise<void> {
    this.shuttingDown ??= this.run(reason);
    return this.shuttingDown;
  }

  private onSignal(signal: NodeJS.Signals): void {
    if (this.shuttingDown) {
      this.logger.warn({ signal }, 'second signal: exiting now without waiting for the drain');
      this.exit(signalExitCode(signal));
      return;
    }
    this.logger.info({ signal }, 'shutdown signal received');
    this.shutdown(`received ${signal}`).then(
      () => this.exit(0),
      (err: unknown) => {
        this.logger.error({ err: toError(err) }, 'shutdown did not complete cleanly');
        this.exit(1);
      },
    );
  }

  private async run(reason: string): Promise<void> {
    const { probes } = this.options;
    this.logger.info(
      { reason, readinessDelayMs: this.readinessDelayMs },
      'shutting down: readiness now fails',
    );
    probes?.markDraining();
    if (this.readinessDelayMs > 0) await new Promise((r) => setTimeout(r, this.readinessDelayMs));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`shutdown did not finish within drainTimeoutMs=${this.drainTimeoutMs}`)),
        this.drainTimeoutMs,
      );
    });
    try {
      await Promise.race([this.stopAll(), timeout]);
    } finally {
      clearTimeout(timer);
      probes?.markStopped();
      this.uninstall();
    }
    this.logger.info({}, 'shutdown complete');
  }

  private async stopAll(): Promise<void> {
    await this.target.stop();
    const failures: Error[] = [];
    for (const hook of this.options.onShutdown ?? []) {
      try {
        await hook();
      } catch (err) {
        failures.push(toError(err));
        this.logger.warn({ err: toError(err) }, 'a shutdown hook failed');
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} shutdown hook(s) failed`);
  }

  private exit(code: number): void {
    const exit = this.options.exit ?? ((c: number) => process.exit(c));
    if (exit === false) return;
    exit(code);
  }
}

/**
 * Installs SIGTERM/SIGINT handlers that shut `herald` down gracefully; see {@link Lifecycle}.
 *
 * @example
 * const probes = new HealthProbes({ checker });
 * installShutdownHandlers(herald, { probes, readinessDelayMs: 5000 });
 */
export function installShutdownHandlers(herald: Stoppable, options: LifecycleOptions = {}): Lifecycle {
  return new Lifecycle(herald, options).install();
}
