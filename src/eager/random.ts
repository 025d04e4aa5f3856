/**
 * The random generator behind every random factory. Values are drawn on the host
 * and uploaded, so a seed gives the same numbers on every device.
 */
let state = new Uint32Array(4);

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function manualSeed(seed: number): void {
  const next = splitmix32(Math.floor(seed) ^ Math.floor(seed / 2 ** 32));
  state = new Uint32Array([next(), next(), next(), next()]);
  if (state.every((v) => v === 0)) state[0] = 1;
}
manualSeed(Date.now());

/** xoshiro128**: 32 random bits. */
function nextU32(): number {
  const s = state;
  const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
  const t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}
function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Uniform in [0, 1) with 24 random bits (every value exact in float32). */
export function uniform(): number {
  return (nextU32() >>> 8) / 16777216;
}

export function fillUniform(out: Float32Array, low = 0, high = 1): void {
  for (let i = 0; i < out.length; i++) out[i] = low + (high - low) * uniform();
}

/** Standard normal by Box-Muller. */
export function fillNormal(out: Float32Array, mean = 0, std = 1): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]: log stays finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
}

export function randomInt(low: number, high: number): number {
  return low + Math.floor(uniform() * (high - low));
}
