import { HeraldError } from '../../contracts/errors.js';

/** Marks errors that retrying cannot fix: the message is dead-lettered at once. */
export class PermanentError extends HeraldError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HERALD_PERMANENT', message, options);
  }
}

/**
 * "Not now": the message is redelivered after `delayMs` without counting a failed attempt (e.g.
 * another member holds its idempotency reservation).
 */
export class DeferredError extends HeraldError {
  readonly delayMs: number;

  constructor(message: string, delayMs: number) {
    super('HERALD_DEFERRED', message);
    this.delayMs = delayMs;
  }
}
