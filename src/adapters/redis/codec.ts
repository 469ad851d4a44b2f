import { DecodeError } from '../../core/errors.js';
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

/** Rebuilds a message from the field/value list of a stream entry read with Buffer replies. */
export function decodeFields(streamId: string, fields: readonly Buffer[]): Message {
  let id: string | undefined;
  let key: string | undefined;
  let headers: Record<string, string> = {};
  let body: Uint8Array = new Uint8Array(0);
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString('latin1');
    const value = fields[i + 1]!;
    if (name === 'i') id = value.toString('utf8');
    else if (name === 'k') key = value.toString('utf8');
    else if (name === 'h') headers = JSON.parse(value.toString('utf8')) as Record<string, string>;
    else if (name === 'b') body = new Uint8Array(value); // a copy: consumers may keep it
  }
  if (id === undefined)
    throw new DecodeError(
      `stream entry ${streamId} has no message id (field "i"); it was not written by Herald`,
    );
  return key === undefined ? { id, headers, body } : { id, key, headers, body };
}
