import type { Message } from '../../transport/transport.js';

/*
 * A Herald message is one Kafka record: key = the ordering key (the aggregate id, so the default
 * partitioner keeps one aggregate on one partition), value = the body, headers = the message's
 * headers plus `herald-id`. Records written by other tools are delivered as they are: the id
 * falls back to `<topic>:<partition>:<offset>`, and the core's codec decides whether the body is
 * an event (a garbage body goes to the DLQ with reason `decode`).
 */

/** Header that carries the message id. */
export const ID_HEADER = 'herald-id';

export type RecordHeaders = { [name: string]: string | Buffer }[];

/** The Kafka record headers of a message. */
export function encodeHeaders(message: Message): RecordHeaders {
  const headers: RecordHeaders = [{ [ID_HEADER]: message.id }];
  for (const name in message.headers) headers.push({ [name]: message.headers[name]! });
  return headers;
}

/** The body as a Buffer without copying. */
export function bodyBuffer(body: Uint8Array): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

interface RawRecord {
  readonly value: Buffer | null;
  readonly key?: Buffer | string | null | undefined;
  readonly headers?: RecordHeaders | undefined;
  readonly partition: number;
  readonly offset: number;
}

/** Rebuilds a message from a consumed record; never throws. */
export function decodeRecord(topic: string, record: RawRecord): Message {
  let id: string | undefined;
  const headers: Record<string, string> = {};
  if (record.headers) {
    for (const header of record.headers) {
      for (const name in header) {
        const value = header[name]!;
        const text = typeof value === 'string' ? value : value.toString('utf8');
        if (name === ID_HEADER) id = text;
        else headers[name] = text;
      }
    }
  }
  const rawKey = record.key;
  const key =
    rawKey === null || rawKey === undefined
      ? undefined
      : typeof rawKey === 'string'
        ? rawKey
        : rawKey.toString('utf8');
  const body = record.value ?? new Uint8Array(0);
  const message = {
    id: id ?? `${topic}:${record.partition}:${record.offset}`,
    headers,
    body,
  };
  return key === undefined ? message : { ...message, key };
}
