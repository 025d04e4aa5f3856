// CPU matmul throughput: `npx tsx bench/matmul-cpu.ts` prints GFLOP/s for the project's
// kernel and a naive triple loop; bench/run.ts can call benchCpuMatmul() instead.
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { matmulF32 } from '../src/runtime/cpu/matmul.ts';

type MatmulFn = typeof matmulF32;

interface Shape { name: string; M: number; K: number; N: number; transA: boolean; transB: boolean }

/** The seed MLP's forward/backward shapes plus a square reference. */
export const CPU_MATMUL_SHAPES: Shape[] = [
  { name: 'fwd 64x1000 @ 1000x100 (NN)', M: 64, K: 1000, N: 100, transA: false, transB: false },
  { name: 'dX 64x100 @ (1000x100)^T (NT)', M: 64, K: 100, N: 1000, transA: false, transB: true },
  { name: 'dW (64x1000)^T @ 64x100 (TN)', M: 1000, K: 64, N: 100, transA: true, transB: false },
  { name: 'head 64x100 @ 100x10 (NN)', M: 64, K: 100, N: 10, transA: false, transB: false },
  { name: '512x512x512 (NN)', M: 512, K: 512, N: 512, transA: false, transB: false },
];

/** The naive baseline: one dot product per output, strided reads, double accumulation. */
export function naiveMatmulF32(
  a: Float32Array, aOff: number, transA: boolean, b: Float32Array, bOff: number, transB: boolean,
  out: Float32Array, outOff: number, M: number, K: number, N: number,
): void {
  const aI = transA ? 1 : K, aK = transA ? M : 1, bK = transB ? 1 : N, bJ = transB ? K : 1;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += a[aOff + i * aI + k * aK] * b[bOff + k * bK + j * bJ];
      out[outOff + i * N + j] = s;
    }
  }
}

function filled(n: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = s / 4294967296 - 0.5;
  }
  return x;
}

/** Best-of-`trials` GFLOP/s: the max filters out time lost to other processes on the box. */
function measure(fn: MatmulFn, s: Shape, seconds: number, trials = 5): number {
  const a = filled(s.M * s.K, 1), b = filled(s.K * s.N, 2), out = new Float32Array(s.M * s.N);
  const run = () => fn(a, 0, s.transA, b, 0, s.transB, out, 0, s.M, s.K, s.N);
  const warmEnd = performance.now() + seconds * 1000;
  for (let i = 0; i < 3 || performance.now() < warmEnd; i++) run(); // JIT warm-up
  let best = 0;
  for (let t = 0; t < trials; t++) {
    let iters = 0;
    const t0 = performance.now();
    let elapsed = 0;
    do {
      run();
      iters++;
      elapsed = (performance.now() - t0) / 1000;
    } while (elapsed < seconds / trials);
    best = Math.max(best, (2 * s.M * s.N * s.K * iters) / elapsed / 1e9);
  }
  return best;
}

export async function benchCpuMatmul(
  opts: { baseline?: boolean; seconds?: number } = {},
): Promise<{ name: string; gflops: number }[]> {
  const seconds = opts.seconds ?? 0.5;
  const results: { name: string; gflops: number }[] = [];
  for (const s of CPU_MATMUL_SHAPES) {
    results.push({ name: `cpu matmul ${s.name}`, gflops: measure(matmulF32, s, seconds) });
    if (opts.baseline) {
      results.push({ name: `cpu matmul naive ${s.name}`, gflops: measure(naiveMatmulF32, s, seconds) });
    }
  }
  return results;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const res = await benchCpuMatmul({ baseline: true });
  for (const r of res) console.log(`${r.name.padEnd(50)} ${r.gflops.toFixed(2).padStart(7)} GFLOP/s`);
}
