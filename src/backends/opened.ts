import type { Transport } from '../transport/transport.js';
import type { BackendStores, OpenedBackend, ParsedBackendUrl } from './backend.js';
import { maskUrl } from './registry.js';

/**
 * Bundles a transport and its stores into an {@link OpenedBackend} whose `close()` runs once:
 * the transport first (so in-flight deliveries are returned), then the stores.
 */
export function openedBackend(
  parsed: ParsedBackendUrl,
  transport: Transport,
  stores: BackendStores & { close?(): Promise<void> },
  namespace?: string,
): OpenedBackend {
  let closing: Promise<void> | undefined;
  return {
    backend: parsed.backend,
    displayUrl: maskUrl(parsed.url),
    ...(namespace !== undefined ? { namespace } : {}),
    transport,
    stores: {
      ...(stores.deadLetters ? { deadLetters: stores.deadLetters } : {}),
      ...(stores.idempotency ? { idempotency: stores.idempotency } : {}),
      ...(stores.events ? { events: stores.events } : {}),
    },
    close: () =>
      (closing ??= (async () => {
        try {
          await transport.close();
        } finally {
          await stores.close?.();
        }
      })()),
  };
}
