import type { BackendAdapter } from '../../backends/backend.js';
import { openedBackend } from '../../backends/opened.js';
import { MemoryDeadLetterStore, MemoryIdempotencyStore } from '../../store/memory/index.js';
import { MemoryTransport } from '../../transport/memory.js';
import { MemorySagaStore } from '../../saga/memory-store.js';

export const memoryAdapter: BackendAdapter = {
  async open(parsed, options) {
    const transport = new MemoryTransport(
      options.transportOptions as ConstructorParameters<typeof MemoryTransport>[0],
    );
    if (options.transportOnly) return openedBackend(parsed, transport, {});
    return openedBackend(parsed, transport, {
      deadLetters: new MemoryDeadLetterStore(),
      // No event store: in memory it would grow without bound; pass one explicitly to keep events.
      idempotency: new MemoryIdempotencyStore(),
    });
  },
  openSagaStore: async () => new MemorySagaStore(),
  healthCheck: (_parsed, options) => ({
    name: 'memory',
    critical: options.critical ?? true,
    check: async () => undefined,
  }),
};
