/**
 * A small seeded PRNG. Each call draws from its own generator, seeded from the script seed, the
 * account, the dialled number and how many times that number was dialled before: outcomes stay
 * the same from run to run however the engine interleaves its dials.
 */

/** A function returning uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: 32-bit state, good enough spread for simulated outcomes, and fully reproducible. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * FNV-1a over the code points of the parts joined with NUL, to turn (seed, account, number, n)
 * into one 32-bit seed. Walks the parts in place: joining them and iterating the string costs
 * more than the hash, once per call.
 */
export function hashSeed(...parts: Array<string | number>): number {
  let hash = 0x811c9dc5;
  for (let p = 0; p < parts.length; p++) {
    if (p > 0) hash = Math.imul(hash, 0x01000193) >>> 0; // the NUL separator: hash ^= 0
    const text = String(parts[p]);
    for (let i = 0; i < text.length; i++) {
      const point = text.codePointAt(i) as number;
      if (point > 0xffff) i++; // a surrogate pair is one code point
      hash ^= point;
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
  }
  return hash;
}

/** A uniform integer in [min, max] (inclusive); `max < min` is read as `min`. */
export function between(random: Random, [min, max]: readonly [number, number]): number {
  if (max <= min) return min;
  return Math.floor(min + random() * (max - min + 1));
}
