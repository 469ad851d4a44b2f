import type { Clock, TimerHandle } from './clock.js';

/** @internal A node of the intrusive deadline list; the timeout scope itself is the node. */
export interface DeadlineNode {
  deadline: number;
  prev: DeadlineNode | undefined;
  next: DeadlineNode | undefined;
  queued: boolean;
  expire(): void;
}

/**
 * @internal Pending deadlines ordered by time, served by a single timer.
 *
 * A Timeout policy has one duration, so deadlines arrive in non-decreasing order and insertion is an
 * O(1) append; removal on completion is an O(1) unlink. The timer is armed for the head only, and is not
 * re-armed when the head completes early: it fires once, skips to the new head and re-arms. Under load
 * that is about one timer callback per `timeoutMs`, instead of a timer per call (ADR 0100).
 */
export class DeadlineQueue {
  private head: DeadlineNode | undefined = undefined;
  private tail: DeadlineNode | undefined = undefined;
  private timer: TimerHandle | undefined = undefined;
  private timerAt = Infinity;

  constructor(private readonly clock: Clock) {}

  push(node: DeadlineNode): void {
    // Walk back from the tail: O(1) for monotonic deadlines, still correct if a clock runs backwards.
    let after = this.tail;
    while (after && after.deadline > node.deadline) after = after.prev;
    node.prev = after;
    node.next = after ? after.next : this.head;
    if (node.next) node.next.prev = node;
    else this.tail = node;
    if (after) after.next = node;
    else this.head = node;
    node.queued = true;
    if (node.deadline < this.timerAt) this.arm(node.deadline);
  }

  remove(node: DeadlineNode): void {
    if (!node.queued) return;
    node.queued = false;
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = undefined;
  }

  /** Number of pending deadlines (O(n); for tests and diagnostics). */
  get size(): number {
    let n = 0;
    for (let c = this.head; c; c = c.next) n++;
    return n;
  }

  private arm(at: number): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, at - this.clock.now()));
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.clock.now();
    while (this.head && this.head.deadline <= now) {
      const node = this.head;
      this.remove(node);
      node.expire();
    }
    if (this.head) this.arm(this.head.deadline);
  };
}
