// GFLOP/s of the WGSL matmul variants on the WebGPU runtime.
//   npx tsx bench/matmul-webgpu.ts [variant ...]
// Best of a few timed runs each, since other processes on a small machine add
// noise only in one direction.

import { pathToFileURL } from 'node:url';
import { getGPU, type GPUContext } from '../src/runtime/webgpu/context.ts';
import {
  DEFAULT_MATMUL_VARIANT,
  MATMUL_VARIANTS,
  matmulDispatch,
  matmulParams,
  matmulVariantFor,
  matmulWGSL,
  type MatmulVariantName,
} from '../src/codegen-wgsl/matmul.ts';

export interface MatmulBenchResult {
  name: string;
  gflops: number;
}

const SHAPES: [number, number, number][] = [
  [64, 1000, 100], // M, K, N
  [512, 512, 512],
  [1024, 1024, 1024],
];

async function timeMatmul(ctx: GPUContext, variant: MatmulVariantName, M: number, K: number, N: number, transA = false, transB = false, tries = 2): Promise<number> {
  const V = matmulVariantFor(M, N, K, transA, variant);
  const mk = matmulWGSL({ transA, transB, variant: V });
  const pipe = ctx.pipeline(mk.code, `matmul_${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}_${V.name}`, mk.layout);
  const a = ctx.upload(Float32Array.from({ length: M * K }, (_, i) => ((i % 7) - 3) / 7));
  const b = ctx.upload(Float32Array.from({ length: K * N }, (_, i) => ((i % 5) - 2) / 5));
  const c = ctx.pool.acquire(M * N * 4);
  const flops = 2 * M * N * K;
  const run = (n: number) => {
    for (let i = 0; i < n; i++) ctx.dispatch(pipe, [a, b, c], matmulParams(M, N, K), matmulDispatch(M, N, V), flops);
    return ctx.sync();
  };
  await run(1); // compile
  await run(1); // teach the wait estimator this rate
  const reps = Math.max(1, Math.round(0.25e9 / flops)); // ~25 ms of work at 10 GFLOP/s, at least one matmul
  let best = 0;
  for (let t = 0; t < tries; t++) {
    const t0 = performance.now();
    await run(reps);
    best = Math.max(best, (flops * reps) / ((performance.now() - t0) * 1e6));
  }
  for (const x of [a, b, c]) ctx.pool.release(x);
  return best;
}

export async function benchGpuMatmul(
  variants: MatmulVariantName[] = Object.keys(MATMUL_VARIANTS) as MatmulVariantName[],
  rounds = 3,
): Promise<MatmulBenchResult[]> {
  const ctx = await getGPU();
  const d = DEFAULT_MATMUL_VARIANT;
  const cases: { name: string; run: () => Promise<number> }[] = [];
  for (const v of variants)
    for (const [M, K, N] of SHAPES) cases.push({ name: `${v} NN ${M}x${K}x${N}`, run: () => timeMatmul(ctx, v, M, K, N) });
  // The transposed layouts of the default, and the scalar fallback it takes on unaligned shapes.
  for (const [tA, tB] of [[false, true], [true, false], [true, true]] as const)
    cases.push({ name: `${d} ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} 512x512x512`, run: () => timeMatmul(ctx, d, 512, 512, 512, tA, tB) });
  cases.push({ name: `${d} NN 511x513x509 (scalar fallback)`, run: () => timeMatmul(ctx, d, 511, 513, 509) });
  // How the runtime waits is part of its speed: the same work without sleeping first.
  cases.push({
    name: `${d} NN 1024x1024x1024 (no sleep while waiting)`,
    run: async () => {
      const frac = ctx.waiter.sleepFraction;
      ctx.waiter.sleepFraction = 0;
      try {
        return await timeMatmul(ctx, d, 1024, 1024, 1024);
      } finally {
        ctx.waiter.sleepFraction = frac;
      }
    },
  });
  // Interleaved rounds, best of each: load from other processes only ever slows a case down.
  const best = new Map<string, number>();
  for (let r = 0; r < rounds; r++) for (const c of cases) best.set(c.name, Math.max(best.get(c.name) ?? 0, await c.run()));
  return cases.map((c) => ({ name: c.name, gflops: best.get(c.name)! }));
}

/**
 * Per-dispatch cost of a tiny kernel through the context (params in the
 * uniform ring, bind groups cached): microseconds to record, and to finish.
 */
export async function benchDispatchOverhead(batch = 512, rounds = 5): Promise<{ recordUs: number; totalUs: number; bindGroupsPerStep: number }> {
  const ctx = await getGPU();
  const wgsl = `struct P { n: u32, a: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < p.n) { y[g.x] = x[g.x] * p.a + 1.0; }
}`;
  const pipe = ctx.pipeline(wgsl, 'axpb', { storage: ['read', 'read_write'], uniforms: 1, workgroupSize: [64, 1, 1] });
  const n = 256;
  const x = ctx.upload(new Float32Array(n).fill(1));
  const y = ctx.pool.acquire(n * 4);
  const params = new ArrayBuffer(8);
  new Uint32Array(params, 0, 1)[0] = n;
  const step = () => {
    for (let i = 0; i < batch; i++) ctx.dispatch(pipe, [x, y], params, [n / 64, 1, 1]);
  };
  step();
  await ctx.sync();
  let recordUs = Infinity;
  let totalUs = Infinity;
  let bindGroupsPerStep = 0;
  for (let r = 0; r < rounds; r++) {
    const created = ctx.bindGroupsCreated;
    const t0 = performance.now();
    step();
    const t1 = performance.now();
    await ctx.sync();
    recordUs = Math.min(recordUs, ((t1 - t0) * 1000) / batch);
    totalUs = Math.min(totalUs, ((performance.now() - t0) * 1000) / batch);
    bindGroupsPerStep = ctx.bindGroupsCreated - created;
  }
  ctx.pool.release(x);
  ctx.pool.release(y);
  return { recordUs, totalUs, bindGroupsPerStep };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const ctx = await getGPU();
  console.log(`adapter: ${ctx.adapterInfo.description || ctx.adapterInfo.device}`);
  const args = process.argv.slice(2) as MatmulVariantName[];
  for (const r of await benchGpuMatmul(args.length ? args : undefined)) console.log(`${r.name.padEnd(56)} ${r.gflops.toFixed(2).padStart(7)} GFLOP/s`);
  const o = await benchDispatchOverhead();
  console.log(`tiny dispatch, 512 per submit: record ${o.recordUs.toFixed(1)} us, total ${o.totalUs.toFixed(1)} us, bind groups created per repeated step ${o.bindGroupsPerStep}`);
  console.log(`submits ${ctx.submits}, dispatches ${ctx.dispatches}, pipelines ${ctx.pipelinesCompiled}, bind groups ${ctx.bindGroupsCreated}`);
}
