import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError, DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';
import type { Codec } from './codec.js';

export type CompressionAlgorithm = 'gzip' | 'br';

/**
 * Wraps a codec with compression. Bodies smaller than `minBytes` are stored uncompressed behind a
 * one-byte marker: compressing a 200-byte event costs more CPU than it saves on the wire.
 * The content type becomes e.g. `application/json+gzip` so readers know how to open it.
 */
export function compressed(
  inner: Codec,
  algorithm: CompressionAlgorithm = 'gzip',
  options: { minBytes?: number; level?: number } = {},
): Codec {
  if (algorithm !== 'gzip' && algorithm !== 'br') {
    throw new ConfigError('compression', `must be "gzip" or "br", got ${JSON.stringify(algorithm)}`);
  }
  const minBytes = options.minBytes ?? 512;
  const compress =
    algorithm === 'gzip'
      ? (b: Uint8Array) => gzipSync(b, { level: options.level ?? 6 })
      : (b: Uint8Array) =>
          brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: options.level ?? 4 } });
  const decompress = algorithm === 'gzip' ? gunzipSync : brotliDecompressSync;
  return {
    contentType: `${inner.contentType}+${algorithm}`,
    encode(event: EventEnvelope): Uint8Array {
      const raw = inner.encode(event);
      const packed = raw.byteLength >= minBytes ? compress(raw) : raw;
      const out = new Uint8Array(packed.byteLength + 1);
      out[0] = packed === raw ? 0 : 1;
      out.set(packed, 1);
      return out;
    },
    decode(body: Uint8Array): EventEnvelope {
      if (body.byteLength === 0) throw new DecodeError('compressed body is empty');
      const rest = body.subarray(1);
      if (body[0] === 0) return inner.decode(rest);
      if (body[0] !== 1) throw new DecodeError(`unknown compression marker ${body[0]}`);
      let raw: Uint8Array;
      try {
        raw = decompress(rest);
      } catch (err) {
        throw new DecodeError(`body is not valid ${algorithm} data: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return inner.decode(raw);
    },
  };
}
