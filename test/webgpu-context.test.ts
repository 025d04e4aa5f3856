import { describe, expect, it } from 'vitest';
import { getGPU, isAvailable, workgroupGrid } from '../src/runtime/webgpu/context.ts';
import { sizeClass } from '../src/runtime/webgpu/buffer-pool.ts';
import { DEFAULT_MATMUL_VARIANT, matmulDispatch, matmulParams, matmulVariantFor, matmulWGSL, MATMUL_VARIANTS } from '../src/codegen-wgsl/matmul.ts';

const available = await isAvailable();
// On CI a missing adapter is a failure, not a skip.
const requireGPU = process.env.CI === 'true';


/** the layout of a hand-written shader with one read_write buffer and no uniform (its author declares it; nothing parses WGSL) */
const W1 = { storage: ['read_write' as const], uniforms: 0, workgroupSize: [1, 1, 1] as [number, number, number] };
describe('webgpu availability', () => {
  it.runIf(requireGPU)('has an adapter on CI', async () => {
    await expect(getGPU()).resolves.toBeDefined();
  });
  it.runIf(!available)('explains how to get an adapter', async () => {
    await expect(getGPU()).rejects.toThrow(/setup-webgpu\.sh|browser/);
  });
});

describe('pure helpers', () => {
  it('sizeClass rounds up to at most 25% waste, multiples of 16', () => {
    for (const b of [1, 15, 16, 17, 64, 65, 100, 1000, 1025, 4096, 1e6 + 3]) {
      const c = sizeClass(b);
      expect(c).toBeGreaterThanOrEqual(b);
      expect(c % 16).toBe(0);
      if (b > 64) expect(c).toBeLessThanOrEqual(b * 1.25 + 16);
    }
    expect(sizeClass(0)).toBe(16);
  });
  it('workgroupGrid folds > 65535 into 2D', () => {
    expect(workgroupGrid(100)).toEqual([100, 1, 1]);
    const [x, y, z] = workgroupGrid(70000);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(70000);
    expect(x * y - 70000).toBeLessThan(y);
    expect(z).toBe(1);
  });
});

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

describe.skipIf(!available && !requireGPU)('webgpu context', () => {
  it('write/read round trip, with offsets', async () => {
    const ctx = await getGPU();
    const data = randn(1000, 1);
    const buf = ctx.upload(data);
    expect(new Float32Array(await ctx.read(buf, data.byteLength))).toEqual(data);
    expect(new Float32Array(await ctx.read(buf, 12, 40))).toEqual(data.subarray(10, 13));
    ctx.pool.release(buf);
  });

  it('pool reuses buffers and reports honest stats', async () => {
    const ctx = await getGPU();
    const before = ctx.pool.stats();
    const a = ctx.pool.acquire(1000);
    const s1 = ctx.pool.stats();
    expect(s1.liveBuffers).toBe(before.liveBuffers + 1);
    expect(s1.liveBytes).toBe(before.liveBytes + a.size);
    expect(a.size).toBe(sizeClass(1000));
    ctx.pool.release(a);
    const s2 = ctx.pool.stats();
    expect(s2.liveBuffers).toBe(before.liveBuffers);
    expect(s2.pooledBuffers).toBe(s1.pooledBuffers + 1);
    expect(s2.pooledBytes).toBe(s1.pooledBytes + a.size);
    const b = ctx.pool.acquire(1010); // same size class
    expect(b).toBe(a);
    expect(ctx.pool.stats().created).toBe(s1.created);
    ctx.pool.release(b);
    expect(() => ctx.pool.release(b)).toThrow(/not live/);
  });

  it('pipeline cache compiles each WGSL once', async () => {
    const ctx = await getGPU();
    const wgsl = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = 42.0; }`;
    const compiled = ctx.pipelinesCompiled;
    const p1 = ctx.pipeline(wgsl, 'fortytwo', W1);
    const p2 = ctx.pipeline(wgsl, 'fortytwo-again', W1);
    expect(p2).toBe(p1);
    expect(ctx.pipelinesCompiled).toBe(compiled + 1);
    const [p3] = await ctx.pipelines.prepare([{ wgsl, label: 'fortytwo', layout: W1 }]);
    expect(p3).toBe(p1);
    expect(ctx.pipelinesCompiled).toBe(compiled + 1);
    const buf = ctx.pool.acquire(4);
    ctx.dispatch(p1, [buf], null, [1, 1, 1]);
    expect(new Float32Array(await ctx.read(buf, 4))[0]).toBe(42);
    ctx.pool.release(buf);
  });

  it('invalid WGSL throws at the next flush, with its label', async () => {
    const ctx = await getGPU();
    ctx.pipeline('@compute @workgroup_size(1) fn main() { let x: f32 = ; }', 'broken-kernel', { storage: [], uniforms: 0, workgroupSize: [1, 1, 1] });
    // The error arrives asynchronously; every flush checks for it.
    let error: unknown;
    for (let i = 0; i < 500 && !error; i++) {
      await new Promise((r) => setTimeout(r, 10));
      try {
        ctx.flush();
      } catch (e) {
        error = e;
      }
    }
    expect(String(error)).toMatch(/broken-kernel/);
    await expect(ctx.sync()).resolves.toBeUndefined(); // reported once
  });

  it('folds > 65535 workgroups into 2D and computes every element', async () => {
    const ctx = await getGPU();
    const n = 70000 * 64;
    const wgsl = `struct P { n: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<u32>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.n) { return; }
  y[i] = i * 3u + 1u;
}`;
    const grid = workgroupGrid(n / 64, ctx.limits.maxComputeWorkgroupsPerDimension);
    expect(grid[1]).toBeGreaterThan(1);
    const buf = ctx.pool.acquire(n * 4 + 64); // a larger class: the tail must stay untouched
    ctx.write(buf, new Uint32Array(buf.size / 4).fill(7));
    ctx.dispatch(ctx.pipeline(wgsl, 'fill-2d', { storage: ['read_write'], uniforms: 1, workgroupSize: [64, 1, 1] }), [buf], new Uint32Array([n]), grid);
    const out = new Uint32Array(await ctx.read(buf, buf.size));
    let bad = 0;
    for (let i = 0; i < n; i++) if (out[i] !== ((i * 3 + 1) >>> 0)) bad++;
    expect(bad).toBe(0);
    expect(out[n]).toBe(7);
    ctx.pool.release(buf);
  });

  it('counts dispatches and submits; batches dispatches into one submit', async () => {
    const ctx = await getGPU();
    const wgsl = `struct P { v: f32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> p: P;
@compute @workgroup_size(1) fn main() { y[0] = y[0] + p.v; }`;
    const pipe = ctx.pipeline(wgsl, 'accumulate', { storage: ['read_write'], uniforms: 1, workgroupSize: [1, 1, 1] });
    const buf = ctx.upload(new Float32Array([0, 0, 0, 0]));
    await ctx.sync();
    ctx.resetCounters();
    for (let i = 1; i <= 10; i++) ctx.dispatch(pipe, [buf], new Float32Array([i]), [1, 1, 1]);
    expect(ctx.dispatches).toBe(10);
    expect(ctx.submits).toBe(0);
    expect(new Float32Array(await ctx.read(buf, 4))[0]).toBe(55); // each dispatch saw its own params, in order
    expect(ctx.submits).toBe(1); // the read flushed, copy included
    expect(ctx.pipelinesCompiled).toBe(0);
    // A full batch submits by itself.
    ctx.resetCounters();
    for (let i = 0; i < ctx.maxBatchDispatches; i++) ctx.dispatch(pipe, [buf], new Float32Array([0]), [1, 1, 1]);
    expect(ctx.submits).toBe(1);
    // The same step again creates no bind groups.
    await ctx.sync();
    ctx.resetCounters();
    for (let i = 0; i < ctx.maxBatchDispatches; i++) ctx.dispatch(pipe, [buf], new Float32Array([0]), [1, 1, 1]);
    expect(ctx.bindGroupsCreated).toBe(0);
    ctx.pool.release(buf);
  });

  it('write after dispatches into the same buffer keeps program order', async () => {
    const ctx = await getGPU();
    const wgsl = `@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(1) fn main() { y[0] = y[0] * 2.0; }`;
    const pipe = ctx.pipeline(wgsl, 'double', W1);
    const buf = ctx.upload(new Float32Array([3]));
    ctx.dispatch(pipe, [buf], null, [1, 1, 1]); // 6
    ctx.write(buf, new Float32Array([5])); // must land after the dispatch above
    ctx.dispatch(pipe, [buf], null, [1, 1, 1]); // 10
    expect(new Float32Array(await ctx.read(buf, 4))[0]).toBe(10);
    ctx.pool.release(buf);
  });

  function refMatmul(a: Float32Array, b: Float32Array, M: number, N: number, K: number, tA: boolean, tB: boolean) {
    const c = new Float64Array(M * N);
    const mag = new Float64Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        let m = 0;
        for (let k = 0; k < K; k++) {
          const p = a[tA ? k * M + i : i * K + k]! * b[tB ? j * K + k : k * N + j]!;
          s += p;
          m += Math.abs(p);
        }
        c[i * N + j] = s;
        mag[i * N + j] = m;
      }
    return { c, mag };
  }

  // Error relative to sum |a_ik * b_kj|: cancellation makes plain relative error meaningless near 0.
  async function checkMatmul(M: number, K: number, N: number, tA: boolean, tB: boolean, variant: keyof typeof MATMUL_VARIANTS, batch = 1) {
    const ctx = await getGPU();
    const V = matmulVariantFor(M, N, K, tA, variant);
    const mk = matmulWGSL({ transA: tA, transB: tB, variant: V });
    const pipe = ctx.pipeline(mk.code, `matmul_${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}_${V.name}`, mk.layout);
    const a = randn(batch * M * K, M * 7 + K);
    const b = randn(batch * K * N, N * 13 + K);
    const [ba, bb, bc] = [ctx.upload(a), ctx.upload(b), ctx.pool.acquire(batch * M * N * 4)];
    ctx.dispatch(pipe, [ba, bb, bc], matmulParams(M, N, K), matmulDispatch(M, N, V, batch));
    const out = new Float32Array(await ctx.read(bc, batch * M * N * 4));
    let worst = 0;
    for (let z = 0; z < batch; z++) {
      const { c, mag } = refMatmul(a.subarray(z * M * K), b.subarray(z * K * N), M, N, K, tA, tB);
      for (let i = 0; i < M * N; i++) worst = Math.max(worst, Math.abs(out[z * M * N + i]! - c[i]!) / (mag[i]! + 1e-30));
    }
    for (const x of [ba, bb, bc]) ctx.pool.release(x);
    return worst;
  }

  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 7, 5],
    [33, 65, 17],
    [64, 1000, 100],
    [36, 8, 44], // vec4-aligned except M
  ];
  // Each pipeline costs ~0.15-1 s of LLVM compile on lavapipe: keep the set small.
  for (const variant of [DEFAULT_MATMUL_VARIANT, 'r4x4-8x8'] as const)
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const)
      it(`matmul ${variant} ${tA ? 'T' : 'N'}${tB ? 'T' : 'N'} matches float64`, { timeout: 60_000 }, async () => {
        for (const [M, K, N] of shapes) expect(await checkMatmul(M, K, N, tA, tB, variant), `${M}x${K}x${N}`).toBeLessThan(1e-4);
      });

  it('batched matmul (z = batch)', { timeout: 60_000 }, async () => {
    expect(await checkMatmul(12, 20, 8, false, false, DEFAULT_MATMUL_VARIANT, 3)).toBeLessThan(1e-4);
    expect(await checkMatmul(5, 3, 7, true, true, DEFAULT_MATMUL_VARIANT, 2)).toBeLessThan(1e-4);
  });

  it('matmul epilogue: bias + relu from an extra binding', { timeout: 60_000 }, async () => {
    const ctx = await getGPU();
    const [M, K, N] = [9, 16, 12];
    const k = matmulWGSL({
      transA: false,
      transB: false,
      extraBindings: [{ name: 'bias', type: 'array<f32>', access: 'read' }],
      epilogue: (acc, _row, col) => `max(${acc} + bias[${col}], 0.0)`,
    });
    expect(k.paramsBinding).toBe(4);
    const a = randn(M * K, 3);
    const b = randn(K * N, 4);
    const bias = randn(N, 5);
    const bufs = [ctx.upload(a), ctx.upload(b), ctx.pool.acquire(M * N * 4), ctx.upload(bias)];
    ctx.dispatch(ctx.pipeline(k.code, 'matmul_bias_relu', k.layout), bufs, matmulParams(M, N, K), matmulDispatch(M, N, k.variant));
    const out = new Float32Array(await ctx.read(bufs[2]!, M * N * 4));
    const { c } = refMatmul(a, b, M, N, K, false, false);
    for (let i = 0; i < M * N; i++) expect(out[i]).toBeCloseTo(Math.max(c[i]! + bias[i % N]!, 0), 5);
    for (const x of bufs) ctx.pool.release(x);
  });
});
