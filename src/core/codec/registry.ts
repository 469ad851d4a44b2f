import { DecodeError } from '../errors.js';
import type { Codec } from './codec.js';
import { compressed } from './compression.js';
import { jsonCodec } from './json.js';

/**
 * Codecs known to a consumer, looked up by the message's `content-type` header. JSON and its
 * compressed variants are always known; register others (e.g. Protobuf) with `add`.
 */
export class CodecRegistry {
  private readonly byType = new Map<string, Codec>();

  constructor(codecs: readonly Codec[] = []) {
    for (const c of [jsonCodec, compressed(jsonCodec, 'gzip'), compressed(jsonCodec, 'br'), ...codecs])
      this.add(c);
  }

  add(codec: Codec): this {
    this.byType.set(codec.contentType, codec);
    return this;
  }

  /** Codec for a content type; a missing header means JSON (what every Herald version wrote first). */
  get(contentType: string | undefined): Codec {
    const codec = this.byType.get(contentType ?? jsonCodec.contentType);
    if (!codec) {
      throw new DecodeError(
        `no codec registered for content-type "${contentType}"; known: ${[...this.byType.keys()].join(', ')}`,
      );
    }
    return codec;
  }
}
