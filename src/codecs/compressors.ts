import type { Compressor } from '../core/codec/compression.js';
import { requireOptional } from './optional.js';

interface SnappyModule {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array, options?: { asBuffer?: boolean }): Buffer | string;
}
interface Lz4Module {
  compressSync(input: Uint8Array): Buffer;
  uncompressSync(input: Uint8Array): Buffer;
}
interface ZstdModule {
  compress(input: Uint8Array, parameters?: { compressionLevel?: number }): Buffer;
  decompress(input: Uint8Array): Buffer;
}

/**
 * Snappy (the seed system's choice): fast, modest ratio. Needs the optional package `snappy`
 * (prebuilt binaries ship inside the registry package).
 */
export function snappy(): Compressor {
  const lib = requireOptional<SnappyModule>('snappy', 'snappy compression');
  return {
    name: 'snappy',
    compress: (b) => lib.compressSync(b),
    decompress: (b) => lib.uncompressSync(b, { asBuffer: true }) as Buffer,
  };
}

/** LZ4 block format: the fastest to decompress. Needs the optional package `lz4-napi`. */
export function lz4(): Compressor {
  const lib = requireOptional<Lz4Module>('lz4-napi', 'lz4 compression');
  return { name: 'lz4', compress: (b) => lib.compressSync(b), decompress: (b) => lib.uncompressSync(b) };
}

/**
 * Zstandard: the best ratio at a speed close to snappy's. `level` 1–19 (default 3). Needs the
 * optional package `zstd-napi` (it compiles its bundled zstd at install time).
 */
export function zstd(options: { level?: number } = {}): Compressor {
  const lib = requireOptional<ZstdModule>('zstd-napi', 'zstd compression');
  const parameters = { compressionLevel: options.level ?? 3 };
  return { name: 'zstd', compress: (b) => lib.compress(b, parameters), decompress: (b) => lib.decompress(b) };
}
