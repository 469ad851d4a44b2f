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
 * publishing. The pool is also kept as one hex string, converted by a single native call per
 * refill, so an id is a substring of it rather than a chain of concatenated byte pairs (which cost
 * ~10 ns a byte and leave a rope of garbage behind).
 */
const POOL_BYTES = 8192;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let poolHex = '';
let poolOffset = POOL_BYTES;
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
let lastMs = 0;
let counter = 0;

/** Offset of `n` fresh random bytes in `pool` (and of their hex digits at twice that in `poolHex`). */
function take(n: number): number {
  if (poolOffset + n > POOL_BYTES) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    poolOffset = 0;
  }
  const r = poolOffset;
  poolOffset += n;
  return r;
}

/** `bytes` random bytes (at most 32) as lowercase hex, e.g. 16 for a W3C trace id. */
export function randomHex(bytes: number): string {
  if (!(bytes >= 1 && bytes <= 32)) throw new RangeError(`randomHex takes 1 to 32 bytes, got ${bytes}`);
  const r = take(bytes) * 2;
  return poolHex.slice(r, r + bytes * 2);
}

/** `7xxx`: the version nibble and the 12-bit counter, for every counter value. */
const VERSION_AND_COUNTER: string[] = Array.from({ length: 0x1000 }, (_, i) => (0x7000 | i).toString(16));
/** `tttttttt-tttt-` for {@link lastMs}: rebuilt once per millisecond, not per id. */
let timePrefix = '';

/** Returns a new UUIDv7 string; ids from one process are strictly increasing. */
export function uuidv7(now: number = Date.now()): string {
  const r = take(10);
  if (now > lastMs) {
    lastMs = now;
    counter = ((pool[r]! & 0x07) << 8) | pool[r + 1]!; // random start keeps ids unguessable
    timePrefix = timeHex(lastMs);
  } else {
    counter++;
    if (counter > 0xfff) {
      // Counter overflow: borrow the next millisecond rather than lose ordering.
      lastMs++;
      counter = 0;
      timePrefix = timeHex(lastMs);
    }
  }
  const h = r * 2;
  // The template makes a chain of six cons strings (V8 joins lazily past 12 characters), and an id
  // lives as long as its queued message: every collection would copy and trace six objects. trim()
  // of the (unpadded) text flattens it in one runtime call and keeps two (the flat text and the
  // cons that now points to it); toLowerCase() kept one but scanned and copied the text once more,
  // ~650 instructions per id more under callgrind (ADR 0012).
  return `${timePrefix}${VERSION_AND_COUNTER[counter]!}-${HEX[(pool[r + 2]! & 0x3f) | 0x80]!}${poolHex.slice(h + 6, h + 8)}-${poolHex.slice(h + 8, h + 20)}`.trim();
}

function timeHex(ms: number): string {
  // Byte by byte from the table: toString(16) of a number this size formats a double (fmod and all).
  const high = Math.floor(ms / 0x100000000);
  const low = ms - high * 0x100000000;
  return `${HEX[(high >>> 8) & 0xff]!}${HEX[high & 0xff]!}${HEX[low >>> 24]!}${HEX[(low >>> 16) & 0xff]!}-${HEX[(low >>> 8) & 0xff]!}${HEX[low & 0xff]!}-`;
}

let isoMs = -1;
let isoText = '';
/** The whole second of {@link isoMs} (epoch seconds) and its text up to the milliseconds, `…T12:30:35.`. */
let isoSecond = NaN;
let isoPrefix = '';
/** `000Z` … `999Z`. */
const MILLIS: string[] = Array.from({ length: 1000 }, (_, i) => `${String(i).padStart(3, '0')}Z`);

/**
 * `new Date().toISOString()`, formatted once per millisecond: events published in the same
 * millisecond share the string instead of each allocating a Date and formatting it. Within a
 * second only the milliseconds change, so the date is formatted once per second and a new
 * millisecond is its prefix plus three digits (V8's date formatting costs ~6,000 instructions).
 */
export function isoNow(now: number = Date.now()): string {
  if (now !== isoMs) {
    isoMs = now;
    const second = Math.floor(now / 1000);
    if (second !== isoSecond) {
      isoText = new Date(now).toISOString();
      if (Number.isInteger(now)) {
        isoSecond = second;
        isoPrefix = isoText.slice(0, -4);
      } else {
        isoSecond = NaN;
      }
    } else {
      // toUpperCase of the (already uppercase) text flattens the concatenation: the string is kept
      // by every message of this millisecond.
      isoText = `${isoPrefix}${MILLIS[now - second * 1000]!}`.toUpperCase();
    }
  }
  return isoText;
}
