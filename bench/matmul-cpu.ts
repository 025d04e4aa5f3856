// CPU matmul throughput: `npx tsx bench/matmul-cpu.ts` prints GFLOP/s of the Wasm SIMD kernel
// on one and on all threads, the JavaScript fallback and a naive triple loop, and numpy
// (OpenBLAS) on one and two threads when python3 with numpy is there; bench/run.ts can call
// benchCpuMatmul() instead.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { matmulF32, matmulF32Js, setWasmGemmThreads, wasmGemmInfo } from '../src/runtime/cpu/matmul.ts';

type MatmulFn = typeof matmulF32;

interface Shape { name: string; M: number; K: number; N: number; transA: boolean; transB: boolean }

/** The seed MLP's forward/backward shapes, the large workload's, and a square reference. */
export const CPU_MATMUL_SHAPES: Shape[] = [
  { name: 'fwd 64x1000 @ 1000x100 (NN)', M: 64, K: 1000, N: 100, transA: false, transB: false },
  { name: 'dX 64x100 @ (1000x100)^T (NT)', M: 64, K: 100, N: 1000, transA: false, transB: true },
  { name: 'dW (64x1000)^T @ 64x100 (TN)', M: 1000, K: 64, N: 100, transA: true, transB: false },
  { name: 'head 64x100 @ 100x10 (NN)', M: 64, K: 100, N: 10, transA: false, transB: false },
  { name: '512x512x512 (NN)', M: 512, K: 512, N: 512, transA: false, transB: false },
  { name: 'large 512x2048 @ 2048x2048 (NN)', M: 512, K: 2048, N: 2048, transA: false, transB: false },
  { name: 'large dW (512x2048)^T @ 512x2048 (TN)', M: 2048, K: 512, N: 2048, transA: true, transB: false },
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

/** Waits (briefly) for the helper threads that start in the background. */
async function helpersUp(): Promise<number> {
  const deadline = Date.now() + 5000;
  while (wasmGemmInfo().threads < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return wasmGemmInfo().threads;
}

export async function benchCpuMatmul(
  opts: { baseline?: boolean; seconds?: number; shapes?: Shape[] } = {},
): Promise<{ name: string; gflops: number }[]> {
  const seconds = opts.seconds ?? 0.5;
  const threads = await helpersUp();
  const results: { name: string; gflops: number }[] = [];
  for (const s of opts.shapes ?? CPU_MATMUL_SHAPES) {
    setWasmGemmThreads(1);
    results.push({ name: `cpu matmul wasm 1 thread ${s.name}`, gflops: measure(matmulF32, s, seconds) });
    if (threads > 1) {
      setWasmGemmThreads(threads);
      results.push({ name: `cpu matmul wasm ${threads} threads ${s.name}`, gflops: measure(matmulF32, s, seconds) });
    }
    if (opts.baseline) {
      results.push({ name: `cpu matmul js ${s.name}`, gflops: measure(matmulF32Js, s, seconds) });
      if (s.M * s.N * s.K <= 2e7) results.push({ name: `cpu matmul naive ${s.name}`, gflops: measure(naiveMatmulF32, s, seconds) });
    }
  }
  setWasmGemmThreads(Infinity);
  return results;
}

/** numpy's matmul (OpenBLAS) on the same shapes, float32, on `threads` threads; null without numpy. */
export function benchNumpyMatmul(threads: number, seconds = 0.5): { name: string; gflops: number }[] | null {
  const shapes = JSON.stringify(CPU_MATMUL_SHAPES);
  const script = `
import json, sys, time
import numpy as np
out = []
for s in json.loads(sys.argv[1]):
    a = np.random.rand(*( (s['K'], s['M']) if s['transA'] else (s['M'], s['K']) )).astype(np.float32)
    b = np.random.rand(*( (s['N'], s['K']) if s['transB'] else (s['K'], s['N']) )).astype(np.float32)
    A = a.T if s['transA'] else a
    B = b.T if s['transB'] else b
    for _ in range(3): A @ B
    best = 0.0
    for t in range(5):
        n = 0; t0 = time.perf_counter()
        while True:
            A @ B; n += 1
            el = time.perf_counter() - t0
            if el >= ${seconds / 5}: break
        best = max(best, 2 * s['M'] * s['N'] * s['K'] * n / el / 1e9)
    out.append({'name': s['name'], 'gflops': best})
print(json.dumps(out))
`;
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where set, pin OpenBLAS's kernels: let it detect the CPU
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  try {
    const text = execFileSync('python3', ['-c', script, shapes], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return (JSON.parse(text) as { name: string; gflops: number }[]).map((r) => ({ name: `numpy ${threads} thread${threads > 1 ? 's' : ''} ${r.name}`, gflops: r.gflops }));
  } catch {
    return null;
  }
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const res = [...(await benchCpuMatmul({ baseline: true })), ...(benchNumpyMatmul(1) ?? []), ...(benchNumpyMatmul(2) ?? [])];
  for (const r of res) console.log(`${r.name.padEnd(64)} ${r.gflops.toFixed(2).padStart(7)} GFLOP/s`);
}
