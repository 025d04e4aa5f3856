/** The cpu backend's last-two-dims transpose (runtime/cpu/transpose.ts: JS tiles, or the Wasm kernel) against index arithmetic. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { swapsLastTwo } from '../src/runtime/cpu/transpose.ts';

function reference(x: Float32Array, shape: number[], dims: number[]): Float32Array {
  const out = new Float32Array(x.length);
  const outShape = dims.map((d) => shape[d]);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
  const idx = new Array(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let s = 0;
    for (let k = 0; k < dims.length; k++) s += idx[k] * strides[dims[k]];
    out[o] = x[s];
    for (let k = outShape.length - 1; k >= 0; k--) {
      if (++idx[k] < outShape[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

describe('cpu transpose of the last two dims', () => {
  it('recognises exactly the permutations that swap the last two dims', () => {
    expect(swapsLastTwo([1, 0])).toBe(true);
    expect(swapsLastTwo([0, 1, 3, 2])).toBe(true);
    expect(swapsLastTwo([0, 1])).toBe(false);
    expect(swapsLastTwo([1, 0, 2])).toBe(false);
    expect(swapsLastTwo([0, 2, 1, 3])).toBe(false);
    expect(swapsLastTwo([2, 1, 0])).toBe(false);
  });

  const cases: [number[], number[]][] = [
    [[1, 1], [1, 0]], [[1, 7], [1, 0]], [[3, 5], [1, 0]], [[33, 65], [1, 0]], [[32, 64], [1, 0]], [[100, 1000], [1, 0]],
    [[2, 3, 37, 41], [0, 1, 3, 2]], [[4, 1, 9], [0, 2, 1]],
    // float32 with rows a multiple of 4 and 4096+ elements: the Wasm kernel's register transposes
    [[4, 1024], [1, 0]], [[2, 64, 96], [0, 2, 1]], [[1000, 100], [1, 0]], [[101, 50], [1, 0]],
    // other permutes keep the strided copy
    [[5, 6, 7], [2, 0, 1]], [[5, 6, 7], [1, 0, 2]],
  ];
  for (const [shape, dims] of cases) {
    it(`permute ${JSON.stringify(shape)} by ${JSON.stringify(dims)} matches index arithmetic, forward and backward`, () => {
      const n = shape.reduce((p, d) => p * d, 1);
      const data = Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3);
      const x = torch.tensor(Array.from(data)).reshape(shape).requiresGrad_();
      const y = x.permute(dims);
      expect(Array.from(y.toArraySync())).toEqual(Array.from(reference(data, shape, dims)));
      // the gradient goes back through the inverse permutation
      const w = torch.tensor(Array.from({ length: n }, (_, i) => (i % 7) - 3)).reshape(y.shape);
      y.mul(w).sum().backward();
      const inv = dims.map((_, i) => dims.indexOf(i));
      expect(Array.from(x.grad!.toArraySync())).toEqual(Array.from(reference(w.toArraySync() as Float32Array, y.shape, inv)));
    });
  }
});
