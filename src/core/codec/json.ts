import { DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';
import type { Codec } from './codec.js';
import { assertEnvelopeShape } from './shape.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** The default codec: the whole envelope as UTF-8 JSON. */
export const jsonCodec: Codec = {
  contentType: 'application/json',
  encode(event: EventEnvelope): Uint8Array {
    return encoder.encode(JSON.stringify(event));
  },
  decode(body: Uint8Array): EventEnvelope {
    let parsed: unknown;
    try {
      parsed = JSON.parse(decoder.decode(body));
    } catch (err) {
      throw new DecodeError(`body is not valid UTF-8 JSON: ${(err as Error).message}`, { cause: err });
    }
    return assertEnvelopeShape(parsed);
  },
};
