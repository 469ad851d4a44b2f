import { malformedMessage, parseHeaders } from '../../transport/malformed.js';
import type { Message } from '../../transport/transport.js';

/*
 * A message is one stream entry with short field names: `i` id, `k` ordering key (absent when
 * none), `h` headers as JSON (absent when empty), `b` body bytes. The fetch script reads `k` to
 * apply per-key order, so that name is part of the scripts' contract.
 */

/** The XADD field/value arguments of a message. */
export function encodeFields(message: Message): (string | Buffer)[] {
  const fields: (string | Buffer)[] = ['i', message.id];
  if (message.key !== undefined) fields.push('k', message.key);
  let hasHeaders = false;
  for (const _ in message.headers) {
    hasHeaders = true;
    break;
  }
  if (hasHeaders) fields.push('h', JSON.stringify(message.headers));
  fields.push('b', Buffer.from(message.body.buffer, message.body.byteOffset, message.body.byteLength));
  return fields;
}

/**
 * The XADD arguments of a message as one binary string, each item written `<byte length>:<bytes>`,
 * for a scheduled message stored until the fetch script adds it to the stream (scripts.ts MOVE_DUE).
 */
export function packFields(message: Message): Buffer {
  const parts: Buffer[] = [];
  for (const field of encodeFields(message)) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    parts.push(Buffer.from(`${bytes.byteLength}:`, 'latin1'), bytes);
  }
  return Buffer.concat(parts);
}

/**
 * Rebuilds a message from the field/value list of a stream entry read with Buffer replies. An
 * entry Herald did not write (no id field, headers that are not a JSON object of strings) becomes
 * a malformed message carrying its raw bytes, which the consumer dead-letters with reason `decode`.
 */
export function decodeFields(streamId: string, fields: readonly Buffer[]): Message {
  let id: string | undefined;
  let key: string | undefined;
  let rawHeaders: string | undefined;
  let body: Uint8Array | undefined;
  const others: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('latin1');
    const value = fields[i + 1]!;
    if (name === 'i') id = value.toString('utf8');
    else if (name === 'k') key = value.toString('utf8');
    else if (name === 'h') rawHeaders = value.toString('utf8');
    else if (name === 'b')
      body = new Uint8Array(value); // a copy: consumers may keep it
    else others[`herald-raw-field-${name}`] = value.toString('utf8');
  }
  let problem: string | undefined;
  let headers: Record<string, string> = {};
  if (id === undefined) problem = 'has no message id (field "i")';
  else if (rawHeaders !== undefined) {
    try {
      headers = parseHeaders(rawHeaders);
    } catch (err) {
      problem = `has headers (field "h") that are not a JSON object of strings (${(err as Error).message})`;
    }
  }
  if (problem === undefined)
    return key === undefined
      ? { id: id!, headers, body: body ?? new Uint8Array(0) }
      : { id: id!, key, headers, body: body ?? new Uint8Array(0) };
  return malformedMessage({
    id: id ?? `redis:${streamId}`,
    ...(key === undefined ? {} : { key }),
    reason: `stream entry ${streamId} ${problem}; it was not written by Herald`,
    body: body ?? new Uint8Array(0),
    ...(rawHeaders === undefined ? {} : { rawHeaders }),
    extraHeaders: { ...others, 'herald-stream-id': streamId },
  });
}
