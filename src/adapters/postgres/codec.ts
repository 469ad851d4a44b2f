/**
 * How message headers are stored: a JSON object of strings in a text column. A row written by
 * something else (plain SQL, another tool) may hold anything there; such a message is still
 * delivered, with headers that make the consumer dead-letter it with reason `decode` (no codec
 * is registered for {@link UNDECODABLE_CONTENT_TYPE}), so the group goes on. See ADR 0943.
 */

/** Content type given to a message whose stored headers are not a JSON object of strings. */
export const UNDECODABLE_CONTENT_TYPE = 'application/vnd.herald.undecodable-headers';
/** Header carrying (the start of) the stored headers text of such a message, for the DLQ entry. */
export const RAW_HEADERS = 'x-herald-raw-headers';

export function decodeHeaders(text: string | null): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(text ?? '');
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      let ok = true;
      for (const v of Object.values(parsed)) if (typeof v !== 'string') ok = false;
      if (ok) return parsed as Record<string, string>;
    }
  } catch {
    // fall through
  }
  return { 'content-type': UNDECODABLE_CONTENT_TYPE, [RAW_HEADERS]: String(text).slice(0, 1000) };
}
