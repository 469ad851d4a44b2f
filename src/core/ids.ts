import { randomFillSync } from 'node:crypto';

/*
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then randomness, with a monotonic counter in the
 * 12 `rand_a` bits so ids minted in the same millisecond by this process still sort in creation
 * order. Sortable ids keep event-store and DLQ indexes append-mostly. Twenty lines do not warrant a
 * dependency.
 */
const random = new Uint8Array(10);
let lastMs = 0;
let counter = 0;

/** Returns a new UUIDv7 string; ids from one process are strictly increasing. */
export function uuidv7(now: number = Date.now()): string {
  randomFillSync(random);
  if (now > lastMs) {
    lastMs = now;
    counter = ((random[0]! & 0x07) << 8) | random[1]!; // random start keeps ids unguessable
  } else {
    counter++;
    if (counter > 0xfff) {
      // Counter overflow: borrow the next millisecond rather than lose ordering.
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
  const timeHex = hex(ms, 12);
  const randA = 0x7000 | counter;
  const randB = ((random[2]! & 0x3f) | 0x80).toString(16) + hex(random[3]!, 2);
  let tail = '';
  for (let i = 4; i < 10; i++) tail += hex(random[i]!, 2);
  return `${timeHex.slice(0, 8)}-${timeHex.slice(8)}-${hex(randA, 4)}-${randB}-${tail}`;
}
