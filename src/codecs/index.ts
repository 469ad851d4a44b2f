/**
 * `herald/codecs`: Protobuf payloads and the compression algorithms beyond node:zlib. Each loads
 * its optional package (`protobufjs`, `snappy`, `lz4-napi`, `zstd-napi`) only when used.
 *
 * @example
 * import { compressed, defineEvent } from 'herald';
 * import { protobuf, zstd } from 'herald/codecs';
 * const OrderPlaced = defineEvent('shop.order.placed', {
 *   codec: compressed(protobuf(root.lookupType('shop.OrderPlaced')), zstd(), { minBytes: 256 }),
 * });
 */
export { protobuf, type ProtobufCodecOptions } from './protobuf.js';
export { snappy, lz4, zstd } from './compressors.js';
