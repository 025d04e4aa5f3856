/**
 * Math the generated cpu loops call instead of V8's builtins where those cost: `Math.exp`
 * is a call into C (fdlibm) that also spills every live value of the loop around it
 * (~15 ns an element; it was most of a softmax row kernel and of GELU's). `exp` below is
 * plain JavaScript that TurboFan inlines into the loop (~7 ns): fdlibm's range reduction to
 * x = (k / 64) ln 2 + r, the degree-6 Taylor polynomial of e^r (|r| <= ln 2 / 128: exact to
 * 3.5e-17), times 2^((k mod 64) / 64) and 2^(k div 64) from tables; within 2.5 ulp of the
 * double exp, so rounded to float32 (where a value is stored) it gives Math.exp's float32
 * bits but for a value within 2.5 double ulps of a float32 rounding boundary (about one in
 * 2^27).
 */

const LOG2E = Math.LOG2E;
// ln 2 / 64 split so that k * LN2_HI is exact for |k| < 2^20 (fdlibm's ln 2 split, over 64)
const LN2_HI = 6.9314718036912381649e-1 / 64;
const LN2_LO = 1.90821492927058770002e-10 / 64;
// 1.5 * 2^52: adding and subtracting it rounds a double of magnitude < 2^51 to an integer
const ROUND = 6755399441055744;

/** 2^k for k in [-1022, 1023], at k + 1022 */
const POW2 = new Float64Array(2046);
for (let k = -1022; k <= 1023; k++) POW2[k + 1022] = 2 ** k;
/** 2^(j / 64) for j in [0, 64) */
const FRAC = new Float64Array(64);
for (let j = 0; j < 64; j++) FRAC[j] = 2 ** (j / 64);

/** e^x; NaN, infinities and arguments near over- or underflow go to Math.exp. */
export function exp(x: number): number {
  if (!(x > -708 && x < 709)) return Math.exp(x);
  // x = (k / 64) ln 2 + r, |r| <= ln 2 / 128; e^x = 2^(k >> 6) 2^((k & 63) / 64) e^r
  const k = x * (64 * LOG2E) + ROUND - ROUND;
  const r = x - k * LN2_HI - k * LN2_LO;
  const r2 = r * r;
  const p = 1 + r + r2 * (1 / 2 + r * (1 / 6)) + r2 * r2 * (1 / 24 + r * (1 / 120) + r2 * (1 / 720));
  const i = k | 0;
  return p * FRAC[i & 63]! * POW2[(i >> 6) + 1022]!;
}
