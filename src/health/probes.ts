import { ConfigError } from '../core/errors.js';
import { HealthChecker } from './checker.js';
import { EventLoopMonitor, type EventLoopMonitorOptions } from './event-loop.js';
import type { HealthReport } from './types.js';

/** Where the process is in its life. */
export type LifecyclePhase = 'starting' | 'ready' | 'draining' | 'stopped';

/** A probe answer: HTTP status plus a JSON body. */
export interface ProbeResponse {
  readonly status: 200 | 503;
  readonly body: Record<string, unknown>;
}

export interface HealthProbesOptions {
  readonly checker?: HealthChecker;
  /** /live fails when the event loop was blocked longer than this. Default 2000 ms. */
  readonly maxEventLoopDelayMs?: number;
  readonly eventLoop?: EventLoopMonitorOptions;
  /**
   * /ready also fails while a critical check is unhealthy (stop sending traffic to an instance
   * that cannot serve it). Default true. /live never looks at dependencies: restarting the
   * process would not fix them.
   */
  readonly readyRequiresHealthy?: boolean;
}

/**
 * Kubernetes-style probes over a {@link HealthChecker} and the process lifecycle:
 * - live: the process can make progress (event loop not blocked, not stopped);
 * - ready: it should receive traffic (started, not draining, critical checks passing);
 * - health: the details of every check.
 * Starts in phase `starting`; call `markReady()` once the service is up.
 */
export class HealthProbes {
  readonly checker: HealthChecker;
  private readonly eventLoop: EventLoopMonitor;
  private readonly maxEventLoopDelayMs: number;
  private readonly readyRequiresHealthy: boolean;
  private currentPhase: LifecyclePhase = 'starting';

  constructor(options: HealthProbesOptions = {}) {
    this.checker = options.checker ?? new HealthChecker();
    this.maxEventLoopDelayMs = options.maxEventLoopDelayMs ?? 2000;
    if (!(this.maxEventLoopDelayMs > 0))
      throw new ConfigError('maxEventLoopDelayMs', `must be > 0, got ${String(options.maxEventLoopDelayMs)}`);
    this.readyRequiresHealthy = options.readyRequiresHealthy ?? true;
    this.eventLoop = new EventLoopMonitor(options.eventLoop);
  }

  get phase(): LifecyclePhase {
    return this.currentPhase;
  }

  markReady(): void {
    if (this.currentPhase === 'starting') this.currentPhase = 'ready';
  }

  /** Readiness fails from now on; liveness still passes while work drains. */
  markDraining(): void {
    if (this.currentPhase !== 'stopped') this.currentPhase = 'draining';
  }

  markStopped(): void {
    this.currentPhase = 'stopped';
    this.eventLoop.stop();
  }

  live(): ProbeResponse {
    const eventLoopDelayMs = this.eventLoop.delayMs;
    const blocked = eventLoopDelayMs > this.maxEventLoopDelayMs;
    const ok = !blocked && this.currentPhase !== 'stopped';
    const reason =
      this.currentPhase === 'stopped'
        ? 'stopped'
        : blocked
          ? `event loop blocked for ${eventLoopDelayMs} ms (limit ${this.maxEventLoopDelayMs} ms)`
          : undefined;
    return {
      status: ok ? 200 : 503,
      body: {
        status: ok ? 'ok' : 'fail',
        phase: this.currentPhase,
        eventLoopDelayMs,
        ...(reason ? { reason } : {}),
      },
    };
  }

  async ready(): Promise<ProbeResponse> {
    if (this.currentPhase !== 'ready')
      return {
        status: 503,
        body: { status: 'fail', phase: this.currentPhase, reason: `phase is ${this.currentPhase}` },
      };
    if (!this.readyRequiresHealthy) return { status: 200, body: { status: 'ok', phase: this.currentPhase } };
    const report = await this.checker.check();
    const failing = report.checks.filter((c) => c.critical && c.status === 'unhealthy').map((c) => c.name);
    if (failing.length > 0)
      return {
        status: 503,
        body: {
          status: 'fail',
          phase: this.currentPhase,
          reason: `critical checks failing: ${failing.join(', ')}`,
        },
      };
    return { status: 200, body: { status: 'ok', phase: this.currentPhase } };
  }

  /** Every check's details; 503 only when unhealthy (degraded still serves). */
  async health(): Promise<ProbeResponse> {
    const report: HealthReport = await this.checker.check();
    return {
      status: report.status === 'unhealthy' ? 503 : 200,
      body: { ...report, phase: this.currentPhase },
    };
  }
}
