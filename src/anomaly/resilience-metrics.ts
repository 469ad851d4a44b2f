import { Counter, Gauge, type Registry } from 'prom-client';
import type { MetricEvent, ResilienceMetrics } from '../resilience/policy.js';

const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated', 'forced-closed'] as const;
const LEVELS = ['normal', 'partial', 'full'] as const;

/**
 * Exports the state of circuit breakers and degradation managers as Prometheus metrics, for the
 * HeraldCircuitBreakerOpen and HeraldDegradationLevelChanged alerts: pass it as the `metrics`
 * option of the policies. Only state changes are recorded (other events are ignored), so it costs
 * nothing on the call path.
 *
 * - `circuit_breaker_state{name, state}`: 1 for the breaker's current state, 0 for the others
 * - `degradation_level{name}`: 0 normal, 1 partial, 2 full
 * - `resilience_state_changes_total{policy, name, state}`: transitions into each state
 *
 * @example
 * const metrics = new ResilienceStateMetrics({ registry });
 * const breaker = new CircuitBreaker({ name: 'payments-api', metrics });
 */
export class ResilienceStateMetrics implements ResilienceMetrics {
  private readonly breakerState: Gauge<string>;
  private readonly level: Gauge<string>;
  private readonly changes: Counter<string>;

  constructor(options: { readonly registry: Registry }) {
    const registers = [options.registry];
    this.breakerState = new Gauge({
      name: 'circuit_breaker_state',
      help: 'Circuit breaker state: 1 for the current state, 0 for the others',
      labelNames: ['name', 'state'],
      registers,
    });
    this.level = new Gauge({
      name: 'degradation_level',
      help: 'Degradation level: 0 normal, 1 partial, 2 full',
      labelNames: ['name'],
      registers,
    });
    this.changes = new Counter({
      name: 'resilience_state_changes_total',
      help: 'Circuit breaker and degradation state changes, by the state entered',
      labelNames: ['policy', 'name', 'state'],
      registers,
    });
  }

  record(event: MetricEvent): void {
    if (event.event !== 'state' || event.state === undefined) return;
    if (event.policy === 'circuit-breaker') {
      for (const s of BREAKER_STATES)
        this.breakerState.set({ name: event.name, state: s }, s === event.state ? 1 : 0);
    } else if (event.policy === 'degradation') {
      const level = LEVELS.indexOf(event.state as (typeof LEVELS)[number]);
      if (level >= 0) this.level.set({ name: event.name }, level);
    } else return;
    this.changes.inc({ policy: event.policy, name: event.name, state: event.state });
  }
}
