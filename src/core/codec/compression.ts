import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { ConfigError, DecodeError } from '../errors.js';
import type { EventEnvelope } from '../event.js';
import type { Codec } from './codec.js';

/** The algorithms built on node:zlib; snappy, lz4 and zstd come from `herald/codecs`. */
export type CompressionAlgorithm = 'gzip' | 'br';

/**
 * A block compression algorithm. `name` becomes the content-type suffix (`application/json+zstd`),
 * so producer and consumer must agree on it.
 */
export interface Compressor {
  readonly name: string;
  compress(bytes: Uint8Array): Uint8Array;
  /** Throws on bytes that are not valid for the algorithm. */
  decompress(bytes: Uint8Array): Uint8Array;
}

/** gzip or brotli from node:zlib; `level` is gzip's level (default 6) or brotli's quality (default 4). */
export function zlibCompressor(algorithm: CompressionAlgorithm, level?: number): Compressor {
  if (algorithm === 'gzip')
    return {
      name: 'gzip',
      compress: (b) => gzipSync(b, { level: level ?? 6 }),
      decompress: (b) => gunzipSync(b),
    };
  if (algorithm === 'br')
    return {
      name: 'br',
      compress: (b) => brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: level ?? 4 } }),
      decompress: (b) => brotliDecompressSync(b),
    };
  throw new ConfigError(
    'compression',
    `must be "gzip", "br" or a Compressor (snappy(), lz4(), zstd() from herald/codecs), got ${JSON.stringify(algorithm)}`,
  );
}

/**
 * Wraps a codec with compression. Bodies smaller than `minBytes` (default 512) are stored
 * uncompressed behind a one-byte marker: compressing a 200-byte event costs more CPU than it saves
 * on the wire. The content type gains the algorithm as a suffix before any parameters
 * (`application/json+gzip`, `application/protobuf+zstd; proto=shop.OrderPlaced`), so readers know
 * how to open it.
 */
export function compressed(
  inner: Codec,
  algorithm: CompressionAlgorithm | Compressor = 'gzip',
  options: { minBytes?: number; level?: number } = {},
): Codec {
  const compressor = typeof algorithm === 'string' ? zlibCompressor(algorithm, options.level) : algorithm;
  if (typeof compressor?.compress !== 'function' || typeof compressor.decompress !== 'function')
    throw new ConfigError('compression', 'a Compressor needs name, compress() and decompress()');
  const minBytes = options.minBytes ?? 512;
  if (!Number.isInteger(minBytes) || minBytes < 0)
    throw new ConfigError(
      'compression.minBytes',
      `must be a whole number >= 0, got ${JSON.stringify(minBytes)}`,
    );
  const pack = (raw: Uint8Array): Uint8Array => {
    const packed = raw.byteLength >= minBytes ? compressor.compress(raw) : raw;
    const out = new Uint8Array(packed.byteLength + 1);
    out[0] = packed === raw ? 0 : 1;
    out.set(packed, 1);
    return out;
  };
  const unpack = (body: Uint8Array): Uint8Array => {
    if (body.byteLength === 0) throw new DecodeError('compressed body is empty');
    const rest = body.subarray(1);
    if (body[0] === 0) return rest;
    if (body[0] !== 1) throw new DecodeError(`unknown compression marker ${body[0]}`);
    try {
      return compressor.decompress(rest);
    } catch (err) {
      throw new DecodeError(`body is not valid ${compressor.name} data: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  const codec: Codec = {
    contentType: withSuffix(inner.contentType, compressor.name),
    encode: (event: EventEnvelope): Uint8Array => pack(inner.encode(event)),
    decode: (body: Uint8Array): EventEnvelope => inner.decode(unpack(body)),
  };
  // Binary mode exactly when the inner codec has it: the payload alone is compressed.
  const { encodePayload, decodePayload } = inner;
  if (encodePayload && decodePayload) {
    codec.encodePayload = (payload) => pack(encodePayload.call(inner, payload));
    codec.decodePayload = (body) => decodePayload.call(inner, unpack(body));
  }
  return codec;
}

/** `type/subtype; params` → `type/subtype+suffix; params`. */
function withSuffix(contentType: string, suffix: string): string {
  const semi = contentType.indexOf(';');
  return semi < 0
    ? `${contentType}+${suffix}`
    : `${contentType.slice(0, semi).trimEnd()}+${suffix}${contentType.slice(semi)}`;
}
