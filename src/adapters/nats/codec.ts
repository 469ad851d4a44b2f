import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import type { Message } from '../../transport/transport.js';
import { hash } from './names.js';

/*
 * A message travels as the NATS message body plus two headers: `Nats-Msg-Id` (see msgId: the
 * duplicate window drops a publisher's retry) and `Herald`, JSON {i, k?, h?} with the
 * id, ordering key and Herald headers, escaped to ASCII so any key or header value survives the
 * text header block.
 */
export const META_HEADER = 'Herald';
const MSG_ID = 'Nats-Msg-Id';

interface Meta {
  i: string;
  k?: string;
  h?: Record<string, string>;
}

const NON_ASCII = /[^\x20-\x7e]/g;

function ascii(json: string): string {
  return json.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** NATS headers of a message. */
export function encodeHeaders(message: Message): MsgHdrs {
  const meta: Meta = { i: message.id };
  if (message.key !== undefined) meta.k = message.key;
  for (const _ in message.headers) {
    meta.h = message.headers as Record<string, string>;
    break;
  }
  const h = natsHeaders();
  h.set(META_HEADER, ascii(JSON.stringify(meta)));
  return h;
}

/**
 * The `Nats-Msg-Id` of a message: `<id>.<hash of topic and headers>`. The duplicate window is per
 * stream, and one stream holds every topic of a namespace: the same id on another topic, or sent
 * again with other headers (a dead-letter replay adds one), is a new message, while a publisher's
 * retry of the same message is dropped.
 */
export function msgId(topic: string, message: Message): string {
  return `${message.id.length <= 200 && /^[\x21-\x7e]+$/.test(message.id) ? message.id : hash(message.id)}.${hash(
    `${topic}\n${JSON.stringify(message.headers)}`,
  )}`;
}

/**
 * Rebuilds a message. One not written by Herald (no `Herald` header, or a broken one) is still
 * delivered, with an id from `Nats-Msg-Id` or its stream sequence and no headers, so the consumer
 * dead-letters it with reason `decode` instead of the transport dropping it.
 */
export function decodeMessage(
  hdrs: MsgHdrs | undefined,
  body: Uint8Array,
  stream: string,
  seq: number,
): Message {
  const raw = hdrs?.get(META_HEADER);
  if (raw) {
    try {
      const meta = JSON.parse(raw) as Meta;
      if (typeof meta.i === 'string') {
        const headers = meta.h && typeof meta.h === 'object' ? meta.h : {};
        return typeof meta.k === 'string'
          ? { id: meta.i, key: meta.k, headers, body }
          : { id: meta.i, headers, body };
      }
    } catch {
      // a foreign message: fall through
    }
  }
  const id = hdrs?.get(MSG_ID) || `nats:${stream}:${seq}`;
  return { id, headers: {}, body };
}
