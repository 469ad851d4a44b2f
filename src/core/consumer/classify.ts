import { isHeraldError } from '../../contracts/errors.js';
import type { EventEnvelope } from '../../contracts/envelope.js';
import type { DeadLetterReason } from '../../store/dead-letter-store.js';

/**
 * What to do with a message whose handler failed:
 * - `retry`: redeliver after `delayMs` (default: the subscription's backoff); counts an attempt, and
 *   the message is dead-lettered with reason `max-attempts` once the budget is spent;
 * - `dead-letter`: park it now;
 * - `defer`: redeliver after `delayMs` without counting an attempt (the failure was not the
 *   message's: an open breaker, a rate limit, another member holding it).
 */
export type Verdict =
  | { readonly action: 'retry'; readonly delayMs?: number }
  | { readonly action: 'dead-letter'; readonly reason: DeadLetterReason }
  | { readonly action: 'defer'; readonly delayMs: number };

/** What a classifier knows besides the error. */
export interface ClassifyContext {
  /** Failed attempts so far, this one included (deferrals not counted). */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly group: string;
  readonly handler: string;
  readonly event: EventEnvelope;
}

/**
 * Decides retry, dead-letter or defer for a failed message. Return `undefined` to leave the decision
 * to {@link defaultClassify}, so a classifier only states its exceptions.
 *
 * @example
 * herald.subscribe({
 *   group: 'billing', events: [InvoiceDue], handler,
 *   classify: (err) =>
 *     err instanceof CardDeclined ? { action: 'dead-letter', reason: 'permanent' }
 *     : err instanceof PaymentGatewayBusy ? { action: 'retry', delayMs: 30_000 }
 *     : undefined,
 * });
 */
export type ErrorClassifier = (error: Error, ctx: ClassifyContext) => Verdict | undefined;

const RETRY: Verdict = Object.freeze({ action: 'retry' });
const PERMANENT: Verdict = Object.freeze({ action: 'dead-letter', reason: 'permanent' });
/** Floor on a deferral, so a breaker with only its probe slots taken (retry-after 0) is not spun on. */
const MIN_DEFER_MS = 100;
/** An operator isolated the breaker: look again now and then, never burn attempts. */
const ISOLATED_DEFER_MS = 5_000;

/**
 * Herald's built-in decisions, by error code so they hold across loaded copies of the package:
 * - `HERALD_DEFERRED` (idempotency reservation held elsewhere): defer by its `delayMs`;
 * - `HERALD_BROKEN_CIRCUIT`, `HERALD_RATE_LIMITED`: defer by the error's `retryAfterMs`, so a
 *   downstream outage does not spend the attempts and fill the DLQ;
 * - `HERALD_ISOLATED_CIRCUIT`: defer by 5 s;
 * - `HERALD_PERMANENT`, `HERALD_DECODE_FAILED`, or any error with `retryable: false`: dead-letter;
 * - anything else: retry with backoff.
 */
export function defaultClassify(error: Error): Verdict {
  if (isHeraldError(error)) {
    switch (error.code) {
      case 'HERALD_DEFERRED':
        return defer((error as { delayMs?: unknown }).delayMs);
      case 'HERALD_BROKEN_CIRCUIT':
      case 'HERALD_RATE_LIMITED':
        return defer((error as { retryAfterMs?: unknown }).retryAfterMs);
      case 'HERALD_ISOLATED_CIRCUIT':
        return { action: 'defer', delayMs: ISOLATED_DEFER_MS };
      case 'HERALD_PERMANENT':
      case 'HERALD_DECODE_FAILED':
        return PERMANENT;
    }
  }
  return (error as { retryable?: unknown }).retryable === false ? PERMANENT : RETRY;
}

function defer(ms: unknown): Verdict {
  const delayMs = typeof ms === 'number' && Number.isFinite(ms) ? Math.ceil(ms) : 0;
  return { action: 'defer', delayMs: Math.max(MIN_DEFER_MS, delayMs) };
}
