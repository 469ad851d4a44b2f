import type {
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterStore,
  DeadLetterPageRequest,
  Page,
  DeadLetterSummary,
} from './dead-letter-store.js';

import { stackTop } from './dead-letter-fingerprint.js';

export type { DeadLetterSummary } from './dead-letter-store.js';
// Lives with the fingerprint (which needs it) so the store interface can depend on that file alone.
export { stackTop };

/** Longest error message a summary keeps; the full one is in the entry. */
export const SUMMARY_MESSAGE_MAX = 500;

export function summarizeEntry(e: DeadLetterEntry): DeadLetterSummary {
  const top = stackTop(e.error.stack);
  return {
    id: e.id,
    reason: e.reason,
    topic: e.topic,
    group: e.group,
    handler: e.handler,
    ...(e.eventType !== undefined ? { eventType: e.eventType } : {}),
    eventId: e.message.id,
    ...(e.message.key !== undefined ? { aggregateId: e.message.key } : {}),
    errorName: e.error.name,
    errorMessage: e.error.message.slice(0, SUMMARY_MESSAGE_MAX),
    ...(top !== undefined ? { stackTop: top } : {}),
    attempts: e.attempts,
    firstFailedAt: e.firstFailedAt,
    deadLetteredAt: e.deadLetteredAt,
  };
}

/** A page of summaries from any store: its own `summaries` when it has one, `list` otherwise. */
export async function summarizeDeadLetters(
  store: DeadLetterStore,
  filter?: DeadLetterFilter,
  page?: DeadLetterPageRequest,
): Promise<Page<DeadLetterSummary>> {
  if (typeof store.summaries === 'function') return store.summaries(filter, page);
  const full = await store.list(filter, page);
  return {
    items: full.items.map(summarizeEntry),
    ...(full.nextCursor !== undefined ? { nextCursor: full.nextCursor } : {}),
  };
}
