/**
 * CPU kernels of the index primitives (slice, sliceScatter, gather, scatterAdd, im2col, col2im, col2imAt) over
 * contiguous inputs. Index values out of range raise PyTorch's error before anything is
 * written.
 */
import type { HostArray } from '../../ir/dtype.ts';
import { outOfBounds } from '../../ir/value-checks.ts';
import type { Attrs } from '../../ir/registry.ts';
import { numel, stridesOf } from '../../ir/shape.ts';
import { windowGradAt, windowMap, windowOffset } from '../../ir/window.ts';

/** Calls fn(flatOut, coords) for every position of shape in row-major order (coords is reused). */
function forEachIndex(shape: readonly number[], fn: (flat: number, c: number[]) => void): void {
  const n = numel(shape);
  const c = shape.map(() => 0);
  for (let flat = 0; flat < n; flat++) {
    fn(flat, c);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++c[d] < shape[d]) break;
      c[d] = 0;
    }
  }
}

export { outOfBounds };

export function runIndex(
  name: string,
  inputs: { arr: HostArray; shape: readonly number[] }[],
  attrs: Attrs,
  out: HostArray,
  outShape: readonly number[],
): void {
  const [x, index] = inputs;
  switch (name) {
    case 'slice': {
      const st = stridesOf(x.shape);
      const starts = attrs.starts as number[];
      const steps = attrs.steps as number[];
      const base = starts.reduce((p, s, d) => p + s * st[d], 0);
      const S = steps.map((s, d) => s * st[d]);
      forEachIndex(outShape, (flat, c) => {
        let off = base;
        for (let d = 0; d < c.length; d++) off += c[d] * S[d];
        out[flat] = x.arr[off];
      });
      return;
    }
    case 'sliceScatter': {
      const src = inputs[1];
      const starts = attrs.starts as number[];
      const steps = attrs.steps as number[];
      const st = stridesOf(outShape);
      if (out !== x.arr) out.set(x.arr);
      forEachIndex(src.shape, (flat, c) => {
        let off = 0;
        for (let d = 0; d < c.length; d++) off += (starts[d] + c[d] * steps[d]) * st[d];
        out[off] = src.arr[flat];
      });
      return;
    }
    case 'gather': {
      const dim = attrs.dim as number;
      const size = x.shape[dim];
      const idx = index.arr;
      for (let i = 0; i < idx.length; i++) if (idx[i] < 0 || idx[i] >= size) throw outOfBounds(idx[i], dim, size);
      const st = stridesOf(x.shape);
      forEachIndex(outShape, (flat, c) => {
        let off = 0;
        for (let d = 0; d < c.length; d++) off += (d === dim ? idx[flat] : c[d]) * st[d];
        out[flat] = x.arr[off];
      });
      return;
    }
    case 'scatterAdd': {
      const dim = attrs.dim as number;
      const size = outShape[dim];
      const idx = index.arr;
      for (let i = 0; i < idx.length; i++) if (idx[i] < 0 || idx[i] >= size) throw outOfBounds(idx[i], dim, size);
      const st = stridesOf(outShape);
      // accumulate in doubles, in source order: the same sums on every run
      const acc = new Float64Array(out.length);
      forEachIndex(x.shape, (flat, c) => {
        let off = 0;
        for (let d = 0; d < c.length; d++) off += (d === dim ? idx[flat] : c[d]) * st[d];
        acc[off] += x.arr[flat];
      });
      out.set(acc);
      return;
    }
    case 'im2col': {
      const w = windowMap(attrs, x.shape, stridesOf(x.shape));
      const cols = outShape[1];
      for (let m = 0, flat = 0; m < outShape[0]; m++) {
        for (let q = 0; q < cols; q++, flat++) {
          const off = windowOffset(w, m, q);
          out[flat] = off < 0 ? w.fill : x.arr[off];
        }
      }
      return;
    }
    case 'col2im': {
      const w = windowMap(attrs, outShape, stridesOf(outShape));
      const cols = x.shape[1];
      const at = (m: number, q: number) => x.arr[m * cols + q];
      forEachIndex(outShape, (flat, c) => (out[flat] = windowGradAt(w, c[0], c[1], c[2], c[3], at)));
      return;
    }
    case 'col2imAt': {
      const w = windowMap(attrs, outShape, stridesOf(outShape));
      const [, C, R0, R1] = x.shape;
      const kw = w.kernel[1];
      const idx = index.arr;
      let base = 0;
      const at = (_m: number, _q: number, a: number, b: number, i: number, j: number) => (idx[base + a * R1 + b] === i * kw + j ? x.arr[base + a * R1 + b] : 0);
      forEachIndex(outShape, (flat, c) => {
        base = (c[0] * C + c[1]) * R0 * R1;
        out[flat] = windowGradAt(w, c[0], c[1], c[2], c[3], at);
      });
      return;
    }
    default:
      throw new Error(`internal error: no cpu kernel for index op ${name}`);
  }
}
