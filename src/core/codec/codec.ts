import type { EventEnvelope } from '../../contracts/envelope.js';

/**
 * Turns envelopes into message bodies and back. The codec's `contentType` travels in the
 * `content-type` header, so a consumer can read messages from producers that use another codec.
 */
export interface Codec {
  /** MIME type written to the `content-type` header, e.g. `application/json`. */
  readonly contentType: string;
  encode(event: EventEnvelope): Uint8Array;
  /** Throws DecodeError when the bytes are not a valid envelope. */
  decode(body: Uint8Array): EventEnvelope;
}
