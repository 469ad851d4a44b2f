/** Disposes a listener registration. */
export type Dispose = () => void;

/** Registers a listener and returns its disposer. */
export type EventSource<T> = (listener: (event: T) => void) => Dispose;

/**
 * Minimal typed event channel. Emitting with no listener is one length check, so policies can emit on
 * the hot path for free when nobody listens.
 */
export class Emitter<T> {
  private listeners: ((event: T) => void)[] = [];

  /** Bound once, so policies can expose it as `onX` without allocating per access. */
  readonly on: EventSource<T> = (listener) => {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  };

  get size(): number {
    return this.listeners.length;
  }

  emit(event: T): void {
    // Copy-on-write array: a listener that disposes itself mid-emit does not skip its neighbour.
    const ls = this.listeners;
    for (let i = 0; i < ls.length; i++) {
      try {
        ls[i]!(event);
      } catch (err) {
        // A failing observer must not change the outcome of the call it observes.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
