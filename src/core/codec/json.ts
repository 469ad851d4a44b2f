import { DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';
import type { Codec } from './codec.js';
import { assertEnvelopeShape } from './shape.js';

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * UTF-8 bytes of `text`. Buffer.from carves small strings out of Node's shared 8 KiB pool where
 * TextEncoder allocates an ArrayBuffer per call, which is what the garbage collector then pays for
 * per event; the result is handed out as a plain Uint8Array view (mind `byteOffset`).
 */
function utf8(text: string): Uint8Array {
  const b = Buffer.from(text, 'utf8');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

function parse(body: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(body));
  } catch (err) {
    throw new DecodeError(`body is not valid UTF-8 JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The default codec: UTF-8 JSON, of the payload alone (binary mode, what Herald publishes) or of
 * the whole envelope (structured mode, what it published before ADR 0010 and what the outbox writes).
 */
export const jsonCodec: Codec = {
  contentType: 'application/json',
  encode(event: EventEnvelope): Uint8Array {
    return utf8(JSON.stringify(event));
  },
  decode(body: Uint8Array): EventEnvelope {
    return assertEnvelopeShape(parse(body));
  },
  encodePayload(payload: unknown): Uint8Array {
    // `undefined` has no JSON text; it travels as null, like an undefined array element would.
    return utf8(JSON.stringify(payload) ?? 'null');
  },
  decodePayload: parse,
};
