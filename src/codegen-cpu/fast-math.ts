/**
 * Math the generated cpu loops call instead of V8's builtins where those cost: `Math.exp`
 * is a call into C (fdlibm) that also spills every live value of the loop around it
 * (~15 ns an element; it was most of a softmax row kernel and of GELU's). `exp` below is
 * plain JavaScript that TurboFan inlines into the loop: fdlibm's range reduction
 * x = k ln2 + r (|r| <= ln2 / 2), the degree-13 Taylor polynomial of e^r by Estrin's scheme
 * (short dependency chains), times 2^k from a table; within 2 ulp of the double exp, so
 * rounded to float32 (where a value is stored) it gives Math.exp's float32 bits but for a
 * value within 2 double ulps of a float32 rounding boundary (about one in 2^28).
 */

const LOG2E = Math.LOG2E;
// ln 2 split so that k * LN2_HI is exact for |k| < 2^20 (fdlibm's)
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;
// 1.5 * 2^52: adding and subtracting it rounds a double of magnitude < 2^51 to an integer
const ROUND = 6755399441055744;

/** 2^k for k in [-1022, 1023], at k + 1022 */
const POW2 = new Float64Array(2046);
for (let k = -1022; k <= 1023; k++) POW2[k + 1022] = 2 ** k;

const c: number[] = [];
for (let i = 0, f = 1; i <= 13; i++) {
  if (i) f *= i;
  c.push(1 / f);
}
const [C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13] = c as [number, number, number, number, number, number, number, number, number, number, number, number, number, number];

/** e^x; NaN, infinities and arguments near over- or underflow go to Math.exp. */
export function exp(x: number): number {
  if (!(x > -708 && x < 709)) return Math.exp(x);
  const k = x * LOG2E + ROUND - ROUND;
  const r = x - k * LN2_HI - k * LN2_LO;
  const r2 = r * r;
  const r4 = r2 * r2;
  const p = C0 + C1 * r + r2 * (C2 + C3 * r) + r4 * (C4 + C5 * r + r2 * (C6 + C7 * r)) + r4 * r4 * (C8 + C9 * r + r2 * (C10 + C11 * r) + r4 * (C12 + C13 * r));
  return p * POW2[(k | 0) + 1022]!;
}
