/** CPU reductions (every one src/ir/reductions.ts declares) over any set of dims, accumulating in doubles. */
import type { HostArray } from '../../ir/dtype.ts';
import { REDUCTIONS, type ReduceOp } from '../../ir/reductions.ts';
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

/** One reduction over `dims`, combined as src/ir/reductions.ts declares it. */
export function runReduce(op: ReduceOp, input: HostArray, shape: readonly number[], dims: readonly number[], out: HostArray): void {
  const r = REDUCTIONS[op];
  const strides = stridesOf(shape);
  const kept = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const keptOff = offsetsOf(shape, strides, kept);
  const redOff = offsetsOf(shape, strides, dims);
  const R = redOff.length;
  for (let k = 0; k < keptOff.length; k++) {
    const base = keptOff[k];
    if (r.kind === 'fold') {
      let acc = r.identity;
      if (r.op === 'add') for (let i = 0; i < R; i++) acc += input[base + redOff[i]];
      else for (let i = 0; i < R; i++) acc *= input[base + redOff[i]];
      out[k] = acc;
    } else {
      const greater = r.prefer === '>';
      let best = r.identity;
      let at = 0;
      for (let i = 0; i < R; i++) {
        const v = input[base + redOff[i]];
        // NaN wins, as PyTorch propagates it
        if ((greater ? v > best : v < best) || (v !== v && best === best)) {
          best = v;
          at = i;
        }
      }
      out[k] = r.index ? at : R === 0 ? NaN : best;
    }
  }
}
