import type {
  DeadLetterEntry,
  DeadLetterFilter,
  DeadLetterStore,
  Page,
  PageRequest,
  DeadLetterSummary,
} from './dead-letter-store.js';

export type { DeadLetterSummary } from './dead-letter-store.js';

/** Longest error message a summary keeps; the full one is in the entry. */
export const SUMMARY_MESSAGE_MAX = 500;

/** The first frame of a stack trace (`at fn (file:line:col)`), trimmed. */
export function stackTop(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  for (const line of stack.split('\n', 20)) {
    const t = line.trim();
    if (t.startsWith('at ')) return t.slice(0, 300);
  }
  return undefined;
}

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
  page?: PageRequest,
): Promise<Page<DeadLetterSummary>> {
  if (typeof store.summaries === 'function') return store.summaries(filter, page);
  const full = await store.list(filter, page);
  return {
    items: full.items.map(summarizeEntry),
    ...(full.nextCursor !== undefined ? { nextCursor: full.nextCursor } : {}),
  };
}
