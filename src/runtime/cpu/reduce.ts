/** CPU reductions (sum, max, argmax) over any set of dims, accumulating in doubles. */
import type { HostArray } from '../../ir/dtype.ts';
import { stridesOf } from '../../ir/shape.ts';

/** Offsets of every position of the sub-space spanned by `dims`, row-major over those dims. */
function offsetsOf(shape: readonly number[], strides: readonly number[], dims: readonly number[]): Int32Array {
  let count = 1;
  for (const d of dims) count *= shape[d];
  const out = new Int32Array(count);
  const idx = new Array<number>(dims.length).fill(0);
  let off = 0;
  for (let i = 0; i < count; i++) {
    out[i] = off;
    for (let k = dims.length - 1; k >= 0; k--) {
      const d = dims[k];
      idx[k]++;
      off += strides[d];
      if (idx[k] < shape[d]) break;
      off -= strides[d] * shape[d];
      idx[k] = 0;
    }
  }
  return out;
}

export function runReduce(
  kind: 'sum' | 'max' | 'argmax',
  input: HostArray,
  shape: readonly number[],
  dims: readonly number[],
  out: HostArray,
): void {
  const strides = stridesOf(shape);
  const kept = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const keptOff = offsetsOf(shape, strides, kept);
  const redOff = offsetsOf(shape, strides, dims);
  const R = redOff.length;
  for (let k = 0; k < keptOff.length; k++) {
    const base = keptOff[k];
    if (kind === 'sum') {
      let acc = 0;
      for (let r = 0; r < R; r++) acc += input[base + redOff[r]];
      out[k] = acc;
    } else {
      let best = -Infinity;
      let at = 0;
      for (let r = 0; r < R; r++) {
        const v = input[base + redOff[r]];
        // NaN propagates, as in PyTorch
        if (v > best || (v !== v && best === best)) {
          best = v;
          at = r;
        }
      }
      out[k] = kind === 'max' ? (R === 0 ? NaN : best) : at;
    }
  }
}
