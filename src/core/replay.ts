import { parsePayload, type EventDefinition } from './event.js';
import {
  matchesEventQuery,
  type EventQuery,
  type EventStore,
  type StoredEvent,
} from '../store/event-store.js';
import { upcast } from './upcast.js';

/**
 * Replays an event store through the same upcasters and schemas consumers use: events of a type
 * in `definitions` come out in their definition's current version, validated; other types come out
 * as stored. Rejects with SchemaVersionError or SchemaValidationError on an event that cannot be
 * brought to the current version, naming it.
 */
export async function* replayEvents(
  store: EventStore,
  definitions: readonly EventDefinition[],
  options: { afterPosition?: number; query?: EventQuery } = {},
): AsyncIterable<StoredEvent> {
  const byType = new Map(definitions.map((d) => [d.type, d]));
  for await (const stored of store.stream(options.afterPosition ?? 0)) {
    if (options.query && !matchesEventQuery(stored, options.query)) continue;
    const definition = byType.get(stored.event.type);
    if (!definition) {
      yield stored;
      continue;
    }
    const current = upcast(definition, stored.event);
    yield { ...stored, event: { ...current, payload: await parsePayload(definition, current.payload) } };
  }
}
