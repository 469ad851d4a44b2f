/** mulberry32: a tiny seeded PRNG so property tests are reproducible (the seed is printed on failure). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Sorted random request times: bursts and gaps, so windows see both edges and quiet periods. */
export function requestTimes(random: () => number, count: number, spanMs: number): number[] {
  const times: number[] = [];
  let t = 0;
  while (times.length < count) {
    if (random() < 0.1) t += random() * spanMs * 0.05;
    const burst = 1 + Math.floor(random() * 8);
    for (let i = 0; i < burst && times.length < count; i++) {
      t += random() < 0.5 ? 0 : random() * 3;
      times.push(Math.round(t * 1000) / 1000);
    }
  }
  return times;
}
