import type { DeadLetterEntry, DeadLetterStore } from '../../store/dead-letter-store.js';
import type { Transport } from '../../transport/transport.js';

/** Headers a mirrored dead letter carries on `<topic>.dlq`, beside the original message's headers. */
export const DLQ_HEADERS = {
  reason: 'herald-dlq-reason',
  group: 'herald-dlq-group',
  handler: 'herald-dlq-handler',
  error: 'herald-dlq-error',
  attempts: 'herald-dlq-attempts',
} as const;

/**
 * A dead-letter store that also publishes each new entry to `<topic>.dlq` on Kafka, so tools that
 * read Kafka see them. The store stays the source of truth (list, replay, purge); the mirror is
 * written after the store accepted the entry, and a failed mirror write fails `add` so the core
 * retries the message rather than lose the copy.
 */
export function mirrorDeadLetters(store: DeadLetterStore, transport: Transport): DeadLetterStore {
  return {
    async add(entry: DeadLetterEntry) {
      await store.add(entry);
      await transport.publish(`${entry.topic}.dlq`, [
        {
          ...entry.message,
          headers: {
            ...entry.message.headers,
            [DLQ_HEADERS.reason]: entry.reason,
            [DLQ_HEADERS.group]: entry.group,
            [DLQ_HEADERS.handler]: entry.handler,
            [DLQ_HEADERS.error]: entry.error.message.slice(0, 1000),
            [DLQ_HEADERS.attempts]: String(entry.attempts),
          },
        },
      ]);
    },
    get: (id) => store.get(id),
    list: (filter, page) => store.list(filter, page),
    count: (filter) => store.count(filter),
    remove: (ids) => store.remove(ids),
    purge: (filter) => store.purge(filter),
    ...(store.close ? { close: () => store.close!() } : {}),
  };
}
