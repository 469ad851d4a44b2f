import { Headers } from '../contracts/headers.js';
import type { Message } from './transport.js';

/**
 * A message a transport could not read, passed on instead of dropped or retried forever: the
 * consumer dead-letters it with reason `decode` and the group goes on. `body` is the raw payload
 * bytes as stored; `rawHeaders` the header text as stored, when it could not be parsed.
 */
export function malformedMessage(parts: {
  readonly id: string;
  readonly key?: string;
  readonly reason: string;
  readonly body: Uint8Array;
  readonly rawHeaders?: string;
  readonly extraHeaders?: Readonly<Record<string, string>>;
}): Message {
  const headers: Record<string, string> = { ...parts.extraHeaders, [Headers.malformed]: parts.reason };
  if (parts.rawHeaders !== undefined) headers[Headers.rawHeaders] = parts.rawHeaders;
  return parts.key === undefined
    ? { id: parts.id, headers, body: parts.body }
    : { id: parts.id, key: parts.key, headers, body: parts.body };
}

/** Parses stored header text; throws unless it is a JSON object whose values are all strings. */
export function parseHeaders(text: string): Record<string, string> {
  const headers = JSON.parse(text) as unknown;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers))
    throw new Error('not an object');
  // for…in rather than Object.values: this runs per message on the broker adapters' read path, and
  // a JSON.parse result has only own enumerable keys, so no array is needed to check them.
  const record = headers as Record<string, unknown>;
  for (const k in record) if (typeof record[k] !== 'string') throw new Error('a value is not a string');
  return record as Record<string, string>;
}
