import type { SagaStatus } from './record.js';

export interface SagaInfo {
  readonly sagaId: string;
  readonly sagaType: string;
  /** The metadata given to `begin` (e.g. a `traceparent`). */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface StepInfo extends SagaInfo {
  readonly step: string;
  readonly kind: 'action' | 'compensation';
  /** Attempt number across processes (1-based). */
  readonly attempt: number;
}

/** Why a reply was ignored. */
export type IgnoredReplyReason = 'uncorrelated' | 'unknown' | 'duplicate' | 'late';

/**
 * Lifecycle hooks of a SagaRunner, for metrics, tracing and logs (see `sagaMetrics` and
 * `sagaTracing` in `herald/observability`). Every method is optional; a throwing observer is ignored.
 */
export interface SagaObserver {
  /** A saga was created by `begin` (not called again when `begin` finds the id already taken). */
  onSagaStarted?(info: SagaInfo): void;
  onStepStarted?(info: StepInfo): void;
  /** The attempt ended: `error` is set when it failed (a command step ends when its reply is applied). */
  onStepFinished?(info: StepInfo & { durationMs: number; error?: Error }): void;
  /** The saga reached `completed`, `compensated`, `aborted`, or parked as `failed` / `compensation-failed`. */
  onSagaFinished?(info: SagaInfo & { status: SagaStatus; durationMs: number; error?: string }): void;
  onReplyIgnored?(info: { sagaId?: string; replyType: string; reason: IgnoredReplyReason }): void;
}

/** @internal Calls every observer, swallowing their errors. */
export function notify<K extends keyof SagaObserver>(
  observers: readonly SagaObserver[],
  hook: K,
  info: Parameters<NonNullable<SagaObserver[K]>>[0],
): void {
  for (const o of observers) {
    const fn = o[hook] as ((i: typeof info) => void) | undefined;
    if (fn === undefined) continue;
    try {
      fn.call(o, info);
    } catch {
      // Instrumentation must never break a saga.
    }
  }
}
