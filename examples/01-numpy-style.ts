/**
 * Seed section "1. Numpy for NN": a two-layer ReLU network, forward and
 * backward written by hand, on plain arrays.
 *
 * We have no NumPy, so this file carries a ten-line stand-in (`nd` below):
 * Float64Array buffers with a shape, and just the operations the seed calls
 * (dot, .T, maximum, subtraction, square().sum(), copy, masked assignment).
 * Float64 because NumPy's default dtype is float64, and plain loops because
 * the point of this section is "no autograd, no tensors". Only the random
 * data comes from wgtorch (`np.random.randn` -> torch.randn on the cpu), so
 * that torch.manualSeed(0) makes the run repeatable. The device option is
 * ignored here: NumPy runs on the CPU.
 */
import * as torch from '../src/index.ts';
import { isMain, runMain, type ExampleOptions } from './_cli.ts';

/** A 2-d float64 array: just enough NumPy for this example. */
class NDArray {
  constructor(readonly data: Float64Array, readonly shape: [number, number]) {}
  /** Matrix product, as np.dot for 2-d arrays. */
  dot(b: NDArray): NDArray {
    const [m, k] = this.shape;
    const [k2, n] = b.shape;
    if (k !== k2) throw new Error(`shapes (${m},${k}) and (${k2},${n}) not aligned`);
    const out = new Float64Array(m * n);
    const a = this.data;
    const bd = b.data;
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const aip = a[i * k + p];
        if (aip === 0) continue;
        const row = p * n;
        const o = i * n;
        for (let j = 0; j < n; j++) out[o + j] += aip * bd[row + j];
      }
    }
    return new NDArray(out, [m, n]);
  }
  get T(): NDArray {
    const [m, n] = this.shape;
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) out[j * m + i] = this.data[i * n + j];
    return new NDArray(out, [n, m]);
  }
  map(f: (v: number, i: number) => number): NDArray {
    const out = new Float64Array(this.data.length);
    for (let i = 0; i < out.length; i++) out[i] = f(this.data[i], i);
    return new NDArray(out, [...this.shape]);
  }
  sub(b: NDArray): NDArray {
    return this.map((v, i) => v - b.data[i]);
  }
  copy(): NDArray {
    return new NDArray(this.data.slice(), [...this.shape]);
  }
  /** In-place `this -= b` */
  isub(b: NDArray): void {
    for (let i = 0; i < this.data.length; i++) this.data[i] -= b.data[i];
  }
  sum(): number {
    let s = 0;
    for (const v of this.data) s += v;
    return s;
  }
}
const np = {
  random: {
    randn: (m: number, n: number) => new NDArray(Float64Array.from(torch.randn(m, n, { device: 'cpu' }).toArraySync()), [m, n]),
  },
  maximum: (a: NDArray, v: number) => a.map((x) => Math.max(x, v)),
  square: (a: NDArray) => a.map((x) => x * x),
};

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  const steps = opts.steps ?? 500;
  const log = opts.log ?? console.log;
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension;
  // H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];

  // Create random input and output data
  const x = np.random.randn(N, D_in);
  const y = np.random.randn(N, D_out);

  // Randomly initialize weights
  const w1 = np.random.randn(D_in, H);
  const w2 = np.random.randn(H, D_out);

  const learningRate = 1e-6;
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y
    const h = x.dot(w1);
    const hRelu = np.maximum(h, 0);
    const yPred = hRelu.dot(w2);

    // Compute and print loss
    const loss = np.square(yPred.sub(y)).sum();
    losses.push(loss);
    log(`${t} ${loss}`);

    // Backprop to compute gradients of w1 and w2 with respect to loss
    const gradYPred = yPred.sub(y).map((v) => 2.0 * v);
    const gradW2 = hRelu.T.dot(gradYPred);
    const gradHRelu = gradYPred.dot(w2.T);
    const gradH = gradHRelu.copy();
    for (let i = 0; i < gradH.data.length; i++) if (h.data[i] < 0) gradH.data[i] = 0; // grad_h[h < 0] = 0
    const gradW1 = x.T.dot(gradH);

    // Update weights
    w1.isub(gradW1.map((v) => learningRate * v));
    w2.isub(gradW2.map((v) => learningRate * v));
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
