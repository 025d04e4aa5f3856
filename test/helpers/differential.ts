/**
 * Helpers for differential tests (one computation on two devices, compared):
 * seeded host data of every dtype, and an element-wise comparison with a float32
 * tolerance that reports the worst element.
 */
import type { DType, HostArray } from '../../src/ir/dtype.ts';
import { hostArray } from '../../src/ir/dtype.ts';
import { values, type Gen } from './gradcheck.ts';

export type DataGen =
  | Gen
  /** standard-normal-ish values, any sign, may be near 0 (forward-only checks) */
  | 'normal'
  /** integers in [-4, 4] (ties, zeros): comparisons, int32 data */
  | 'int'
  /** integers in [-4, 4] without 0 (divisors) */
  | 'intnz'
  /** 0 / 1 */
  | 'bool'
  /** values in [-3, 3] with a fraction, plus some exact integers and zeros (casts) */
  | 'frac'
  /** signed values with some NaN, +inf and -inf mixed in */
  | 'nonfinite'
  /** int32 values over the whole range (most beyond 2^24, where float32 loses integers) */
  | 'bigint';

/** Host data of `n` elements of `dtype`, drawn from r. */
export function hostData(r: () => number, n: number, dtype: DType, gen: DataGen): HostArray {
  const out = hostArray(dtype, n);
  const put = (f: () => number) => {
    for (let i = 0; i < n; i++) out[i] = f();
  };
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  switch (gen) {
    case 'normal':
      put(() => {
        const u = 1 - r();
        return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
      });
      break;
    case 'int':
      put(() => int(-4, 4));
      break;
    case 'intnz':
      put(() => {
        const v = int(1, 4);
        return r() < 0.5 ? -v : v;
      });
      break;
    case 'bool':
      put(() => (r() < 0.5 ? 1 : 0));
      break;
    case 'frac':
      put(() => {
        const k = r();
        if (k < 0.15) return 0;
        if (k < 0.3) return int(-3, 3);
        return -3 + 6 * r();
      });
      break;
    case 'nonfinite':
      put(() => {
        const k = r();
        if (k < 0.1) return NaN;
        if (k < 0.15) return Infinity;
        if (k < 0.2) return -Infinity;
        return -2 + 4 * r();
      });
      break;
    case 'bigint':
      put(() => Math.floor(r() * 2 ** 32) - 2 ** 31);
      break;
    default:
      out.set(values(r, n, gen));
  }
  return out;
}

export interface Tol {
  /** relative to each expected element */
  rtol: number;
  /** absolute, in units of max(1, the largest |expected| of the array) */
  atol: number;
}

export interface Comparison {
  ok: boolean;
  /** worst |got - want| / allowed over the elements (<= 1 passes); Infinity for a NaN/inf/int mismatch */
  ratio: number;
  detail: string;
}

/**
 * Compares flat arrays: ints and bools exactly, floats with
 * |got - want| <= rtol |want| + atol max(1, max |want|); NaN must meet NaN and an
 * infinity the same infinity. The absolute term scales with the array's magnitude
 * because a reduction's error follows the size of its terms, not of its (possibly
 * cancelled) result.
 */
export function compareArrays(got: HostArray, want: HostArray, dtype: DType, tol: Tol): Comparison {
  if (got.length !== want.length) return { ok: false, ratio: Infinity, detail: `length ${got.length} vs ${want.length}` };
  let scale = 1;
  if (dtype === 'float32') for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    let ratio: number;
    if (dtype !== 'float32' || !Number.isFinite(w) || !Number.isFinite(g)) ratio = Object.is(g, w) || g === w ? 0 : Infinity;
    else ratio = Math.abs(g - w) / (tol.rtol * Math.abs(w) + tol.atol * scale);
    if (ratio > worst || Number.isNaN(ratio)) {
      worst = Number.isNaN(ratio) ? Infinity : ratio;
      at = i;
    }
  }
  const detail = at < 0 ? 'equal' : `worst at flat index ${at}: got ${got[at]}, expected ${want[at]} (ratio to tolerance ${worst.toPrecision(3)})`;
  return { ok: worst <= 1, ratio: worst, detail };
}
