import type { EventEnvelope } from './event.js';
import type { DeadLetterEntry } from '../store/dead-letter-store.js';

/** Where a handled message came from; passed to every observer call. */
export interface DeliveryInfo {
  readonly topic: string;
  readonly group: string;
  readonly handler: string;
  readonly attempt: number;
  readonly event?: EventEnvelope;
}

/**
 * Lifecycle hooks for metrics, logs and tests. Every method is optional; observers must not throw
 * (errors are swallowed so instrumentation can never break delivery).
 */
export interface Observer {
  onPublished?(info: { topic: string; events: readonly EventEnvelope[]; durationMs: number }): void;
  onPublishFailed?(info: { topic: string; events: readonly EventEnvelope[]; error: Error }): void;
  /** A handler started on a message (after decoding and validation). */
  onHandlingStarted?(info: DeliveryInfo): void;
  onHandled?(info: DeliveryInfo & { durationMs: number }): void;
  onHandlerFailed?(info: DeliveryInfo & { error: Error; durationMs: number }): void;
  onRetryScheduled?(info: DeliveryInfo & { error: Error; delayMs: number }): void;
  onDeadLettered?(info: { entry: DeadLetterEntry }): void;
  /** A message was acked without running the handler: a duplicate, or a type this subscription does not handle. */
  onSkipped?(info: DeliveryInfo & { reason: 'duplicate' | 'no-handler' }): void;
  /** Something went wrong outside a handler (e.g. the DLQ store was unreachable). */
  onError?(info: { error: Error; where: string }): void;
}

/** Fans a call out to every observer, isolating their failures. */
export class Observers {
  private readonly list: Observer[] = [];

  add(observer: Observer): () => void {
    this.list.push(observer);
    return () => {
      const i = this.list.indexOf(observer);
      if (i >= 0) this.list.splice(i, 1);
    };
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  emit<K extends keyof Observer>(name: K, info: Parameters<NonNullable<Observer[K]>>[0]): void {
    for (const o of this.list) {
      const fn = o[name] as ((i: typeof info) => void) | undefined;
      if (!fn) continue;
      try {
        fn.call(o, info);
      } catch {
        // Instrumentation must never break delivery.
      }
    }
  }
}
