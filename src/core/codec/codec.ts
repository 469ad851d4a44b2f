import type { EventEnvelope } from '../../contracts/envelope.js';

/**
 * Turns envelopes into message bodies and back. The codec's `contentType` travels in the
 * `content-type` header, so a consumer can read messages from producers that use another codec.
 */
export interface Codec {
  /** MIME type written to the `content-type` header, e.g. `application/json`. */
  readonly contentType: string;
  /** Structured mode: the whole envelope as the body. */
  encode(event: EventEnvelope): Uint8Array;
  /** Throws DecodeError when the bytes are not a valid envelope. */
  decode(body: Uint8Array): EventEnvelope;
  /**
   * Binary mode (ADR 0010): only the payload as the body, the other envelope fields go to headers.
   * A codec without it is always written in structured mode.
   */
  encodePayload?(payload: unknown): Uint8Array;
  /** Reads what {@link encodePayload} wrote; throws DecodeError on bytes it cannot read. */
  decodePayload?(body: Uint8Array): unknown;
}
