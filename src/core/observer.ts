import type { EventEnvelope } from './event.js';
import type { DeadLetterEntry } from '../store/dead-letter-store.js';

/** Where a handled message came from; passed to every observer call. */
export interface DeliveryInfo {
  readonly topic: string;
  readonly group: string;
  readonly handler: string;
  readonly attempt: number;
  /** The transport message id (the event id for events Herald published). */
  readonly messageId: string;
  /** True when this delivery is a dead letter replayed to this group (see `DeadLetterAdmin.replay`). */
  readonly replay: boolean;
  readonly event?: EventEnvelope;
}

/**
 * Lifecycle hooks for metrics, logs and tests. Every method is optional; observers must not throw
 * (errors are swallowed so instrumentation can never break delivery).
 */
export interface Observer {
  /**
   * A transport call succeeded. `durationMs` runs from just before the publish middleware (the
   * messages already encoded) to the call's settling; 0 for an observer added while it was in flight.
   */
  onPublished?(info: { topic: string; events: readonly EventEnvelope[]; durationMs: number }): void;
  onPublishFailed?(info: { topic: string; events: readonly EventEnvelope[]; error: Error }): void;
  /**
   * A handler started on a message (after decoding and validation). It is followed by `onHandled`,
   * `onHandlerFailed`, or `onSkipped` with reason `duplicate`, except when the consumer is stopping
   * or an idempotency reservation defers the message.
   */
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

type Listener = (info: never) => void;
type ListenersByName = { [K in keyof Observer]?: Listener[] };

/**
 * Every name present, in one order: one hidden class, so `has` and `emit`, inlined with a constant
 * name at each call site, read a field instead of probing a megamorphic cache.
 */
function noListeners(): ListenersByName {
  return {
    onPublished: undefined,
    onPublishFailed: undefined,
    onHandlingStarted: undefined,
    onHandled: undefined,
    onHandlerFailed: undefined,
    onRetryScheduled: undefined,
    onDeadLettered: undefined,
    onSkipped: undefined,
    onError: undefined,
  };
}

const METHODS = [
  'onPublished',
  'onPublishFailed',
  'onHandlingStarted',
  'onHandled',
  'onHandlerFailed',
  'onRetryScheduled',
  'onDeadLettered',
  'onSkipped',
  'onError',
] as const satisfies readonly (keyof Observer)[];

/** Fans a call out to every observer, isolating their failures. An observer's methods are read when it is added. */
export class Observers {
  private readonly list: Observer[] = [];
  /** Per method, the observers' bound functions: an emit is one property read and a loop. */
  private byName: ListenersByName = noListeners();

  add(observer: Observer): () => void {
    this.list.push(observer);
    this.index();
    return () => {
      const i = this.list.indexOf(observer);
      if (i >= 0) this.list.splice(i, 1);
      this.index();
    };
  }

  get empty(): boolean {
    return this.list.length === 0;
  }

  /** Whether any observer listens for `name`, so callers can skip building its info. */
  has(name: keyof Observer): boolean {
    return this.byName[name] !== undefined;
  }

  /**
   * The listeners by hook name, undefined where none listens: `observers.listeners.onHandled !==
   * undefined` is {@link has} as a named read, for the per-event paths. (`has` reads by a key, and
   * where V8 does not inline it, that one read sees every hook name and goes megamorphic.)
   */
  get listeners(): Readonly<ListenersByName> {
    return this.byName;
  }

  emit<K extends keyof Observer>(name: K, info: Parameters<NonNullable<Observer[K]>>[0]): void {
    const fns = this.byName[name];
    if (fns === undefined) return;
    for (const fn of fns) {
      try {
        (fn as (i: typeof info) => void)(info);
      } catch {
        // Instrumentation must never break delivery.
      }
    }
  }

  private index(): void {
    const byName = noListeners();
    for (const o of this.list) {
      for (const name of METHODS) {
        const fn = o[name];
        if (typeof fn === 'function') (byName[name] ??= []).push((fn as Listener).bind(o));
      }
    }
    this.byName = byName;
  }
}
