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
  if (hasHeaders(message)) fields.push('h', JSON.stringify(message.headers));
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

const I = 0x69; // 'i'
const K = 0x6b; // 'k'
const H = 0x68; // 'h'
const B = 0x62; // 'b'

/**
 * Layouts of an entry in the fetch script's reply (the low three bits of the number after its id):
 * an entry with exactly Herald's fields in Herald's order comes back as its values alone; any other
 * as its field count and field/value list (`fieldList`). See `emit` in scripts.ts.
 */
export const Layout = {
  /** i k h b */
  idKeyHeadersBody: 0,
  /** i k b */
  idKeyBody: 1,
  /** i h b */
  idHeadersBody: 2,
  /** i b */
  idBody: 3,
  /** field count, then field/value pairs */
  fieldList: 4,
} as const;

/**
 * The arguments of the publish script (scripts.ts PUBLISH) for a batch: runs of messages of the same
 * {@link Layout}, each run as its layout, its length and then its messages' values alone (the script
 * supplies the field names). A batch usually is one run: its messages all have a key or none, and
 * all headers or none.
 */
export function publishArgs(messages: readonly Message[]): (string | number | Buffer)[] {
  const args: (string | number | Buffer)[] = [];
  let runAt = -1;
  let runLayout = -1;
  for (const m of messages) {
    const headers = hasHeaders(m) ? JSON.stringify(m.headers) : undefined;
    const layout =
      m.key !== undefined
        ? headers !== undefined
          ? Layout.idKeyHeadersBody
          : Layout.idKeyBody
        : headers !== undefined
          ? Layout.idHeadersBody
          : Layout.idBody;
    if (layout !== runLayout) {
      runLayout = layout;
      runAt = args.length;
      args.push(layout, 0);
    }
    (args[runAt + 1] as number)++;
    args.push(m.id);
    if (m.key !== undefined) args.push(m.key);
    if (headers !== undefined) args.push(headers);
    args.push(Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength));
  }
  return args;
}

function hasHeaders(message: Message): boolean {
  for (const _ in message.headers) return true;
  return false;
}

/** Items of an entry of the fetch reply after its number, from `items[start]` on. */
export function itemsOf(layout: number, items: readonly unknown[], start: number): number {
  switch (layout) {
    case Layout.idKeyHeadersBody:
      return 4;
    case Layout.idKeyBody:
    case Layout.idHeadersBody:
      return 3;
    case Layout.idBody:
      return 2;
    default:
      return 1 + (items[start] as number);
  }
}

/**
 * Rebuilds a message from one entry of the fetch script's reply: its {@link Layout} and its items from
 * `items[start]` on.
 */
export function decodeEntry(
  streamId: string,
  items: readonly Buffer[],
  start: number,
  layout: number,
): Message {
  if (layout === Layout.fieldList) {
    const count = items[start] as unknown as number;
    return decodeFields(streamId, items, start + 1, start + 1 + count);
  }
  let p = start;
  const id = items[p++]!.toString('utf8');
  const key =
    layout === Layout.idKeyHeadersBody || layout === Layout.idKeyBody
      ? items[p++]!.toString('utf8')
      : undefined;
  const rawHeaders =
    layout === Layout.idKeyHeadersBody || layout === Layout.idHeadersBody
      ? items[p++]!.toString('utf8')
      : undefined;
  // A copy: the reply's bytes are a view of the socket's read chunk.
  return toMessage(streamId, id, key, rawHeaders, new Uint8Array(items[p]!), undefined);
}

/**
 * Rebuilds a message from the field/value list of a stream entry read with Buffer replies
 * (`fields[start..end)`, so a flat reply of several entries needs no copy per entry). An
 * entry Herald did not write (no id field, headers that are not a JSON object of strings) becomes
 * a malformed message carrying its raw bytes, which the consumer dead-letters with reason `decode`.
 */
export function decodeFields(
  streamId: string,
  fields: readonly Buffer[],
  start = 0,
  end = fields.length,
): Message {
  let id: string | undefined;
  let key: string | undefined;
  let rawHeaders: string | undefined;
  let body: Uint8Array | undefined;
  let others: Record<string, string> | undefined;
  for (let i = start; i + 1 < end; i += 2) {
    const nameBytes = fields[i]!;
    const value = fields[i + 1]!;
    // Herald's field names are one byte: compared as bytes, so no string is made per field.
    const c = nameBytes.length === 1 ? nameBytes[0]! : -1;
    if (c === I) id = value.toString('utf8');
    else if (c === K) key = value.toString('utf8');
    else if (c === H) rawHeaders = value.toString('utf8');
    else if (c === B)
      body = new Uint8Array(value); // a copy: the reply's bytes are a view of the socket's read chunk
    else (others ??= {})[`herald-raw-field-${nameBytes.toString('latin1')}`] = value.toString('utf8');
  }
  return toMessage(streamId, id, key, rawHeaders, body, others);
}

function toMessage(
  streamId: string,
  id: string | undefined,
  key: string | undefined,
  rawHeaders: string | undefined,
  body: Uint8Array | undefined,
  others: Record<string, string> | undefined,
): Message {
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
