import type { IncomingMessage } from 'node:http';
import type { ConsoleFilter } from './dead-letter-index.js';
import { HttpProblem, REASONS, type Selection } from './service.js';
import type { DeadLetterReason } from '../store/dead-letter-store.js';

/** Largest request body accepted (an edited payload); beyond it, 413. */
export const MAX_BODY_BYTES = 1024 * 1024;
const MAX_TEXT = 500;
const MAX_IDS = 100_000;

const STRING_FIELDS = [
  'group',
  'topic',
  'eventType',
  'handler',
  'errorText',
  'aggregateId',
  'eventId',
  'fingerprint',
  'q',
] as const;
/** Every filter field, as query parameters and in JSON bodies. */
export const FILTER_FIELDS = [...STRING_FIELDS, 'reason', 'since', 'until'] as const;

/** Reads a JSON body, refusing oversized and malformed ones with a 4xx. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpProblem(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpProblem(400, 'request body is not valid JSON');
  }
}

function time(name: string, raw: unknown): number {
  const ms =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'string' && /^\d+$/.test(raw)
        ? Number(raw)
        : typeof raw === 'string'
          ? Date.parse(raw)
          : NaN;
  if (!Number.isFinite(ms))
    throw new HttpProblem(400, `${name} must be an ISO 8601 time or epoch milliseconds`);
  return ms;
}

/** A filter from query parameters or a JSON object; unknown fields are refused, naming the known ones. */
export function parseFilter(
  source: URLSearchParams | Record<string, unknown>,
  ignore: readonly string[] = [],
): ConsoleFilter {
  const entries: [string, unknown][] =
    source instanceof URLSearchParams ? [...source.entries()] : Object.entries(source);
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries) {
    if (ignore.includes(key)) continue;
    if (!(FILTER_FIELDS as readonly string[]).includes(key))
      throw new HttpProblem(400, `unknown filter ${JSON.stringify(key)}; known: ${FILTER_FIELDS.join(', ')}`);
    if (value === undefined || value === '' || value === null) continue;
    if (key === 'since' || key === 'until') {
      out[key] = time(key, value);
      continue;
    }
    if (typeof value !== 'string' || value.length > MAX_TEXT)
      throw new HttpProblem(400, `${key} must be a string of at most ${MAX_TEXT} characters`);
    if (key === 'reason' && !REASONS.includes(value as DeadLetterReason))
      throw new HttpProblem(400, `reason must be one of ${REASONS.join(', ')}`);
    out[key] = value;
  }
  return out as ConsoleFilter;
}

/** `{ ids: [...] }` or `{ filter: {...} }`, from a request body. */
export function parseSelection(body: unknown): Selection {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new HttpProblem(400, 'body must be a JSON object with `ids` or `filter`');
  const b = body as Record<string, unknown>;
  if (b['ids'] !== undefined && b['filter'] !== undefined)
    throw new HttpProblem(400, 'give `ids` or `filter`, not both');
  if (b['ids'] !== undefined) {
    const ids = b['ids'];
    if (
      !Array.isArray(ids) ||
      ids.length > MAX_IDS ||
      !ids.every((i) => typeof i === 'string' && i.length <= 1000)
    )
      throw new HttpProblem(400, `ids must be an array of at most ${MAX_IDS} entry ids`);
    return { ids: ids as string[] };
  }
  if (b['filter'] !== undefined) {
    const f = b['filter'];
    if (f === null || typeof f !== 'object' || Array.isArray(f))
      throw new HttpProblem(400, 'filter must be an object');
    return { filter: parseFilter(f as Record<string, unknown>) };
  }
  throw new HttpProblem(400, 'body must have `ids` (entry ids) or `filter` (e.g. {"fingerprint": "..."})');
}

export function parseLimit(raw: string | null): number {
  if (raw === null || raw === '') return 50;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new HttpProblem(400, 'limit must be an integer 1..1000');
  return n;
}
