import { randomFillSync } from 'node:crypto';

/*
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then randomness, with a monotonic counter in the
 * 12 `rand_a` bits so ids minted in the same millisecond by this process still sort in creation
 * order. Sortable ids keep event-store and DLQ indexes append-mostly. Twenty lines do not warrant a
 * dependency.
 */

/**
 * Random bytes are drawn from a pool: one `randomFillSync` call costs about as much as a whole
 * publish on the memory transport, whatever the size, so a call per id was the dearest step of
 * publishing. 10 bytes per id, refilled every ~400 ids.
 */
const POOL_BYTES = 4000;
const pool = new Uint8Array(POOL_BYTES);
let poolOffset = POOL_BYTES;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let lastMs = 0;
let counter = 0;

/** Offset of `n` fresh random bytes in `pool`. */
function take(n: number): number {
  if (poolOffset + n > POOL_BYTES) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += n;
  return r;
}

/** `bytes` random bytes (at most 32) as lowercase hex, e.g. 16 for a W3C trace id. */
export function randomHex(bytes: number): string {
  if (!(bytes >= 1 && bytes <= 32)) throw new RangeError(`randomHex takes 1 to 32 bytes, got ${bytes}`);
  const r = take(bytes);
  let out = '';
  for (let i = r; i < r + bytes; i++) out += HEX[pool[i]!]!;
  return out;
}

/** Returns a new UUIDv7 string; ids from one process are strictly increasing. */
export function uuidv7(now: number = Date.now()): string {
  const r = take(10);
  if (now > lastMs) {
    lastMs = now;
    counter = ((pool[r]! & 0x07) << 8) | pool[r + 1]!; // random start keeps ids unguessable
  } else {
    counter++;
    if (counter > 0xfff) {
      // Counter overflow: borrow the next millisecond rather than lose ordering.
      lastMs++;
      counter = 0;
    }
  }
  const timeHex = lastMs.toString(16).padStart(12, '0');
  const randA = 0x7000 | counter;
  return (
    `${timeHex.slice(0, 8)}-${timeHex.slice(8)}-${HEX[randA >> 8]!}${HEX[randA & 0xff]!}-` +
    `${HEX[(pool[r + 2]! & 0x3f) | 0x80]!}${HEX[pool[r + 3]!]!}-` +
    `${HEX[pool[r + 4]!]!}${HEX[pool[r + 5]!]!}${HEX[pool[r + 6]!]!}${HEX[pool[r + 7]!]!}${HEX[pool[r + 8]!]!}${HEX[pool[r + 9]!]!}`
  );
}
