/**
 * The workgroup-memory (tiled) matmul variants against a float64 CPU reference, beside
 * the default, through the runtime: all four layouts, shapes that fit no tile (odd M, N
 * and K, K not a multiple of the tile's K step), batches with their own strides, and every
 * hook (prologues that read row/k/col and params words, an epilogue reading an extra
 * binding, row sums of op(A), epilogueCall and the operand reductions' calls). Outputs start as NaN, so an
 * element that is never written fails.
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MATMUL_VARIANT,
  MATMUL_VARIANTS,
  matmulDispatch,
  matmulParams,
  matmulVariantFor,
  matmulWGSL,
  subgroupsFit,
  SUBGROUP_LANES,
  type MatmulOptions,
  type MatmulVariantName,
} from '../src/codegen-wgsl/matmul.ts';
import { SUBGROUPS_ENABLE } from '../src/codegen-wgsl/namespace.ts';
import { foldedEntry } from '../src/codegen-wgsl/fold.ts';
import { getGPU } from '../src/runtime/webgpu/context.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { rng } from './helpers/gradcheck.ts';

const TILED = (Object.keys(MATMUL_VARIANTS) as MatmulVariantName[]).filter((n) => 'shared' in MATMUL_VARIANTS[n]);
const SUBGROUP = (Object.keys(MATMUL_VARIANTS) as MatmulVariantName[]).filter((n) => 'subgroup' in MATMUL_VARIANTS[n]);
// on the device, two of them (each pipeline compiles for seconds on lavapipe): two row shares per lane
// (and, transposed, half the lanes loading), and two subgroups per workgroup row; the rest differ in sizes only
const SUBGROUP_RUN: MatmulVariantName[] = ['sg-r16x4-32x2', 'sg-r32x4-16x4'];
/** A subgroup variant runs only where subgroups are 8 wide (lavapipe here); elsewhere its device cases have nothing to check. */
const runsHere = async (n: MatmulVariantName) => !('subgroup' in MATMUL_VARIANTS[n]) || (await getGPU()).subgroupsFit;
const LAYOUTS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;
const SHAPES = [
  [37, 45, 19], // M, N, K: nothing aligned, K < one tile step for tileK 16 + a partial step
  [64, 100, 1000], // vec4-aligned: the default takes its vec4 path
  [44, 36, 20], // vec4-aligned, but no dimension a multiple of a subgroup variant's tile: clamped rows and columns
] as const;
const TOL = 1e-4;

/** The scalars the hooks below use, as the CPU sees them. */
const S0 = 0.375; // params word x[0][0] (f32 bits)
const proA = (x: number, row: number, k: number) => x * 0.5 + (row % 3) - S0 + (k % 2) * 0.125;
const proB = (x: number, k: number, col: number) => x - 0.25 * (col % 2) + (k % 3) * 0.0625;
const epi = (acc: number, row: number, col: number, bias: Float32Array) => (acc + bias[col]!) * 2 + row;

const HOOKS: Pick<MatmulOptions, 'prologueA' | 'prologueB' | 'epilogue' | 'extraBindings' | 'reduceA' | 'extraParamWords'> = {
  prologueA: (x, row, k) => `(${x} * 0.5 + f32((${row}) % 3u) - bitcast<f32>(p.x[0][0]) + f32((${k}) % 2u) * 0.125)`,
  prologueB: (x, k, col) => `(${x} - 0.25 * f32((${col}) % 2u) + f32((${k}) % 3u) * 0.0625)`,
  epilogue: (acc, row, col) => `((${acc} + bias[${col}]) * 2.0 + f32(${row}))`,
  extraBindings: [
    { name: 'bias', type: 'array<f32>', access: 'read' },
    { name: 'rsum', type: 'array<f32>', access: 'read_write' },
  ],
  reduceA: { identity: '0.0', combine: (acc, v) => `${acc} + ${v}`, store: 'rsum' },
  extraParamWords: 1,
};

interface Problem {
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
  batch: number;
  /** per-batch strides in elements (0 broadcasts) */
  strideA: number;
  strideB: number;
  hooks: boolean;
}

const layoutName = (tA: boolean, tB: boolean) => `${tA ? 'T' : 'N'}${tB ? 'T' : 'N'}`;

function random(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

/** op(A)[b][i][k] from A's storage (transposed storage is [K, M]). */
const atA = (pr: Problem, a: Float32Array, b: number, i: number, k: number) =>
  a[b * pr.strideA + (pr.transA ? k * pr.M + i : i * pr.K + k)]!;
const atB = (pr: Problem, bm: Float32Array, b: number, k: number, j: number) =>
  bm[b * pr.strideB + (pr.transB ? j * pr.K + k : k * pr.N + j)]!;

/** Float64 reference: C, the magnitude sum |a||b| per element (for the tolerance), and the row sums of batch 0. */
function reference(pr: Problem, a: Float32Array, bm: Float32Array, bias: Float32Array) {
  const { M, N, K, batch } = pr;
  const c = new Float64Array(batch * M * N);
  const mag = new Float64Array(batch * M * N);
  const rows = new Float64Array(M);
  for (let b = 0; b < batch; b++)
    for (let i = 0; i < M; i++) {
      const arow = Array.from({ length: K }, (_, k) => (pr.hooks ? proA(atA(pr, a, b, i, k), i, k) : atA(pr, a, b, i, k)));
      if (b === 0) rows[i] = arow.reduce((s, x) => s + x, 0);
      for (let j = 0; j < N; j++) {
        let s = 0;
        let m = 0;
        for (let k = 0; k < K; k++) {
          const bv = pr.hooks ? proB(atB(pr, bm, b, k, j), k, j) : atB(pr, bm, b, k, j);
          s += arow[k]! * bv;
          m += Math.abs(arow[k]! * bv);
        }
        c[b * M * N + i * N + j] = pr.hooks ? epi(s, i, j, bias) : s;
        mag[b * M * N + i * N + j] = (pr.hooks ? 2 : 1) * m;
      }
    }
  return { c, mag, rows };
}

function params(pr: Problem): Uint32Array {
  const base = new Uint32Array(matmulParams(pr.M, pr.N, pr.K, { a: pr.strideA, b: pr.strideB, c: pr.M * pr.N }));
  if (!pr.hooks) return base;
  const words = new Uint32Array(12);
  words.set(base);
  words[8] = new Uint32Array(Float32Array.of(S0).buffer)[0]!;
  return words;
}

/** Worst error of C relative to its magnitude sum, and of the row sums relative to theirs. */
async function runCase(variant: MatmulVariantName, pr: Problem): Promise<{ c: number; rows: number }> {
  const ctx = await getGPU();
  const { M, N, K, batch } = pr;
  const V = matmulVariantFor(M, N, K, pr.transA, variant);
  const kernel = matmulWGSL({ transA: pr.transA, transB: pr.transB, variant: V, ...(pr.hooks ? HOOKS : {}) });
  const pipe = ctx.pipeline(kernel.code, `test_matmul_${layoutName(pr.transA, pr.transB)}_${V.name}${pr.hooks ? '_hooks' : ''}`, kernel.layout);
  const a = random(pr.strideA * (batch - 1) + M * K, M + 3 * K);
  const bm = random(pr.strideB * (batch - 1) + K * N, N + 5 * K);
  const bias = random(N, 7);
  const bufs = [ctx.upload(a), ctx.upload(bm), ctx.upload(new Float32Array(batch * M * N).fill(NaN))];
  if (pr.hooks) bufs.push(ctx.upload(bias), ctx.upload(new Float32Array(M).fill(NaN)));
  try {
    ctx.dispatch(pipe, bufs, params(pr), matmulDispatch(M, N, V, batch));
    const out = new Float32Array(await ctx.read(bufs[2]!, batch * M * N * 4));
    const ref = reference(pr, a, bm, bias);
    let c = 0;
    for (let i = 0; i < out.length; i++) c = Math.max(c, Number.isNaN(out[i]) ? Infinity : Math.abs(out[i]! - ref.c[i]!) / (ref.mag[i]! + 1e-6));
    let rows = 0;
    if (pr.hooks) {
      const rs = new Float32Array(await ctx.read(bufs[4]!, M * 4));
      for (let i = 0; i < M; i++) rows = Math.max(rows, Number.isNaN(rs[i]) ? Infinity : Math.abs(rs[i]! - ref.rows[i]!) / (Math.abs(ref.rows[i]!) + K));
    }
    return { c, rows };
  } finally {
    for (const x of bufs) ctx.pool.release(x);
  }
}

describe('matmul variants: pure', () => {
  it('the tiled variants exist, have 64 invocations and load scalars', () => {
    expect(TILED.length).toBeGreaterThan(0);
    for (const n of TILED) {
      const v = MATMUL_VARIANTS[n];
      expect(v.wg[0] * v.wg[1]).toBe(64);
      expect(v.vec4).toBe(false);
      expect(matmulVariantFor(37, 45, 19, true, n)).toBe(v); // no fallback needed
    }
  });

  it('the tiled kernel keeps the dispatch meaning of tile (rows*wg.y x cols*wg.x)', () => {
    for (const n of TILED) {
      const v = MATMUL_VARIANTS[n];
      const k = matmulWGSL({ transA: false, transB: false, variant: n });
      expect(k.tile).toEqual({ rows: v.rows * v.wg[1], cols: v.cols * v.wg[0] });
      expect(k.workgroupSize).toEqual([v.wg[0], v.wg[1], 1]);
      expect(matmulDispatch(37, 45, n, 2)).toEqual([Math.ceil(45 / k.tile.cols), Math.ceil(37 / k.tile.rows), 2]);
      expect(k.code).toContain('var<workgroup>');
      expect(k.code).toContain('workgroupBarrier()');
      // barriers need uniform control flow: no early return anywhere
      expect(k.code).not.toMatch(/return;/);
    }
  });
});

describe('matmul variants: subgroup, pure', () => {
  it('share rows through subgroupBroadcast, loading vec4, with 64 invocations and no early return; unaligned shapes take the default scalar twin', () => {
    expect(SUBGROUP.length).toBeGreaterThan(0);
    for (const n of SUBGROUP) {
      const v = MATMUL_VARIANTS[n];
      expect(v.wg[0] * v.wg[1]).toBe(64);
      expect(v.wg[0] % SUBGROUP_LANES).toBe(0);
      for (const [tA, tB] of LAYOUTS) {
        const k = matmulWGSL({ transA: tA, transB: tB, variant: n });
        expect(k.code.startsWith(`${SUBGROUPS_ENABLE}\n`)).toBe(true);
        expect(k.code).toContain('subgroupBroadcast(');
        // every lane reaches the broadcasts in the K loop
        expect(k.code).not.toMatch(/return;/);
        expect(k.layout.builtins.map((b) => b.kind)).toContain('subgroup_invocation_id');
        // inside a pack or a folded grid the directive moves to the module's top
        const part = matmulWGSL({ transA: tA, transB: tB, variant: n, ns: { prefix: 'q_', storage: (i) => i, uniform: (i) => 3 + i, entry: 'function' } });
        expect(part.code).not.toContain(SUBGROUPS_ENABLE);
      }
      expect(matmulVariantFor(37, 45, 19, false, n)).toEqual(matmulVariantFor(37, 45, 19, false, DEFAULT_MATMUL_VARIANT));
      expect(matmulVariantFor(64, 100, 1000, false, n)).toBe(v);
    }
    expect(subgroupsFit({ subgroupMinSize: 8, subgroupMaxSize: 8 }, true)).toBe(true);
    expect(subgroupsFit({ subgroupMinSize: 8, subgroupMaxSize: 8 }, false)).toBe(false);
    expect(subgroupsFit({ subgroupMinSize: 4, subgroupMaxSize: 8 }, true)).toBe(false);
    expect(subgroupsFit({ subgroupMinSize: 32, subgroupMaxSize: 32 }, true)).toBe(false);
    expect(subgroupsFit({}, true)).toBe(false);
  });
});

describe.skipIf(!webgpuAvailable)('matmul variants on the device', () => {
  for (const variant of [...TILED, ...SUBGROUP_RUN, DEFAULT_MATMUL_VARIANT])
    for (const [tA, tB] of LAYOUTS)
      it(`${variant} ${layoutName(tA, tB)}: plain and with every hook, odd and aligned shapes, batch 2`, async () => {
        if (!(await runsHere(variant))) return;
        for (const [M, N, K] of SHAPES) {
          const base = { transA: tA, transB: tB, M, N, K, batch: 2 };
          // own strides per batch, padded (by multiples of 4, as vec4 loads need) so that a wrong batch offset reads other data
          const plain = await runCase(variant, { ...base, strideA: M * K + 8, strideB: K * N + 4, hooks: false });
          expect(plain.c, `plain ${M}x${N}x${K}`).toBeLessThan(TOL);
          // A broadcast over the batch (stride 0): the row sums, written by every batch, agree
          const hooked = await runCase(variant, { ...base, strideA: 0, strideB: K * N, hooks: true });
          expect(hooked.c, `hooks ${M}x${N}x${K}`).toBeLessThan(TOL);
          expect(hooked.rows, `row sums ${M}x${N}x${K}`).toBeLessThan(TOL);
        }
      });

  for (const variant of [...TILED, ...SUBGROUP_RUN, DEFAULT_MATMUL_VARIANT])
    it(`${variant}: epilogueCall and the operand reductions' calls run once per element, per row (a sum of op(A)) and per column (a max of op(B))`, async () => {
      const ctx = await getGPU();
      if (!(await runsHere(variant))) return;
      // vec4-aligned, so that a subgroup variant runs itself rather than the default's scalar twin
      const [M, N, K] = 'subgroup' in MATMUL_VARIANTS[variant] ? [44, 36, 20] : [37, 45, 19];
      for (const [tA, tB] of [LAYOUTS[0], LAYOUTS[3]]) {
        const V = matmulVariantFor(M, N, K, tA, variant);
        const kernel = matmulWGSL({
          transA: tA,
          transB: tB,
          variant: V,
          extraBindings: [
            { name: 'out2', type: 'array<f32>', access: 'read_write' },
            { name: 'rows2', type: 'array<f32>', access: 'read_write' },
            { name: 'cols2', type: 'array<f32>', access: 'read_write' },
          ],
          // accumulate, so that a second call for the same element or row shows
          epilogueCall: (acc, row, col) => `out2[${row} * p.N + ${col}] = out2[${row} * p.N + ${col}] + ${acc} * 3.0;`,
          reduceA: { identity: '0.0', combine: (acc, v) => `${acc} + ${v}`, call: (sum, row) => `rows2[${row}] = rows2[${row}] + ${sum} + 1.0;` },
          // a max starts below every element: the tiled kernel's zero padding past K must not join it
          reduceB: { identity: '-1e30', combine: (acc, v) => `max(${acc}, ${v})`, call: (m, col) => `cols2[${col}] = cols2[${col}] + ${m} - 2.0;` },
        });
        const a = random(M * K, 11);
        const bm = random(K * N, 12);
        const bufs = [ctx.upload(a), ctx.upload(bm), ctx.pool.acquire(M * N * 4), ctx.upload(new Float32Array(M * N)), ctx.upload(new Float32Array(M)), ctx.upload(new Float32Array(N))];
        try {
          ctx.dispatch(ctx.pipeline(kernel.code, `test_matmul_calls_${layoutName(tA, tB)}_${V.name}`, kernel.layout), bufs, matmulParams(M, N, K), matmulDispatch(M, N, V));
          const out = new Float32Array(await ctx.read(bufs[3]!, M * N * 4));
          const rows = new Float32Array(await ctx.read(bufs[4]!, M * 4));
          const cols = new Float32Array(await ctx.read(bufs[5]!, N * 4));
          const pr: Problem = { transA: tA, transB: tB, M, N, K, batch: 1, strideA: 0, strideB: 0, hooks: false };
          const ref = reference(pr, a, bm, new Float32Array(N));
          for (let i = 0; i < M * N; i++) expect(Math.abs(out[i]! - 3 * ref.c[i]!) / (3 * ref.mag[i]! + 1e-6)).toBeLessThan(TOL);
          for (let i = 0; i < M; i++) expect(Math.abs(rows[i]! - ref.rows[i]! - 1) / (Math.abs(ref.rows[i]!) + K)).toBeLessThan(TOL);
          // a max is exact: every column is called once, with the max of its K elements
          for (let j = 0; j < N; j++) expect(cols[j], `column ${j}`).toBe(Math.fround(Math.max(...Array.from({ length: K }, (_, k) => atB(pr, bm, 0, k, j))) - 2));
        } finally {
          for (const x of bufs) ctx.pool.release(x);
        }
      }
    });

  for (const variant of [DEFAULT_MATMUL_VARIANT, ...SUBGROUP_RUN])
  it(`${variant}: epilogueCall4 runs once per group of 4 outputs, with vec4 loads and stores, every layout`, async () => {
    const ctx = await getGPU();
    if (!(await runsHere(variant))) return;
    const [M, N, K] = [37, 44, 20]; // N and K multiples of 4 (vec4), M not: the edge rows are guarded
    for (const [tA, tB] of LAYOUTS) {
      const V = matmulVariantFor(M, N, K, tA, variant);
      if (!V.vec4) continue; // a transposed A needs M % 4 == 0 for vec4
      const kernel = matmulWGSL({
        transA: tA,
        transB: tB,
        variant: V,
        extraBindings: [{ name: 'out2', type: 'array<vec4<f32>>', access: 'read_write' }],
        epilogueCall4: (acc, row, col) => `out2[(${row} * p.N + ${col}) / 4u] = out2[(${row} * p.N + ${col}) / 4u] + ${acc} * 3.0;`,
      });
      // 4x8 outputs per invocation: one call per group of 4, in a loop whose trip count the
      // compiler cannot see (`zero` is 0), so that it stays rolled (cheap to compile)
      expect(kernel.code).toContain(`e < max(p.zero, ${(V.rows * V.cols) / 4}u)`);
      expect(new Uint32Array(matmulParams(M, N, K))[6]).toBe(0);
      const a = random(M * K, 21);
      const bm = random(K * N, 22);
      const bufs = [ctx.upload(a), ctx.upload(bm), ctx.pool.acquire(M * N * 4), ctx.upload(new Float32Array(M * N))];
      try {
        ctx.dispatch(ctx.pipeline(kernel.code, `test_matmul_call4_${layoutName(tA, tB)}`, kernel.layout), bufs, matmulParams(M, N, K), matmulDispatch(M, N, V));
        const out = new Float32Array(await ctx.read(bufs[3]!, M * N * 4));
        const ref = reference({ transA: tA, transB: tB, M, N, K, batch: 1, strideA: 0, strideB: 0, hooks: false }, a, bm, new Float32Array(N));
        for (let i = 0; i < M * N; i++) expect(Math.abs(out[i]! - 3 * ref.c[i]!) / (3 * ref.mag[i]! + 1e-6), `${layoutName(tA, tB)} element ${i}`).toBeLessThan(TOL);
      } finally {
        for (const x of bufs) ctx.pool.release(x);
      }
    }
  });
});

describe.skipIf(!webgpuAvailable)('matmul variants on the device: a subgroup variant in a folded grid', () => {
  it('the fold writes the directive and passes subgroup_invocation_id: the same product', async () => {
    const ctx = await getGPU();
    if (!ctx.subgroupsFit) return;
    const [M, N, K] = [44, 36, 20];
    const V = matmulVariantFor(M, N, K, false, SUBGROUP_RUN[0]!);
    const part = matmulWGSL({ transA: false, transB: true, variant: V, ns: { prefix: 'f_', storage: (i) => i, uniform: (i) => 3 + i, entry: 'function' } });
    const [gx, gy] = matmulDispatch(M, N, V);
    const folded = foldedEntry('test', part.code, part.layout, [gx, gy, 1], 'f_');
    expect(folded.code.startsWith(`${SUBGROUPS_ENABLE}\n`)).toBe(true);
    expect(folded.code).toContain('@builtin(subgroup_invocation_id) sl: u32');
    const a = random(M * K, 31);
    const bm = random(K * N, 32);
    const bufs = [ctx.upload(a), ctx.upload(bm), ctx.upload(new Float32Array(M * N).fill(NaN))];
    try {
      ctx.dispatch(ctx.pipeline(folded.code, `test_matmul_fold_${V.name}`, folded.layout), bufs, matmulParams(M, N, K), [folded.count, 1, 1]);
      const out = new Float32Array(await ctx.read(bufs[2]!, M * N * 4));
      const ref = reference({ transA: false, transB: true, M, N, K, batch: 1, strideA: 0, strideB: 0, hooks: false }, a, bm, new Float32Array(N));
      let worst = 0;
      for (let i = 0; i < M * N; i++) worst = Math.max(worst, Number.isNaN(out[i]) ? Infinity : Math.abs(out[i]! - ref.c[i]!) / (ref.mag[i]! + 1e-6));
      expect(worst).toBeLessThan(TOL);
    } finally {
      for (const x of bufs) ctx.pool.release(x);
    }
  });
});

describe.skipIf(!webgpuAvailable)('matmul variants on the device: operands loaded through loadA / loadB (an index map, as a conv reads its im2col)', () => {
  for (const variant of [...TILED, ...SUBGROUP_RUN, DEFAULT_MATMUL_VARIANT, 'r4x8-8x8'] as MatmulVariantName[])
    it(`${variant}: A and B loaded by the hooks (here: read transposed from their buffers), odd and vec4-aligned shapes`, async () => {
      const ctx = await getGPU();
      if (!(await runsHere(variant))) return;
      for (const [M, N, K] of SHAPES) {
        const V = matmulVariantFor(M, N, K, false, variant);
        const kernel = matmulWGSL({
          transA: false,
          transB: false,
          variant: V,
          loadA: (row, k) => `A[offA + (${k}) * p.M + (${row})]`,
          loadB: (k, col) => `B[offB + (${col}) * p.K + (${k})]`,
        });
        expect(kernel.code).toContain('var<storage, read> A: array<f32>;');
        const a = random(M * K, 21);
        const bm = random(K * N, 22);
        const bufs = [ctx.upload(a), ctx.upload(bm), ctx.upload(new Float32Array(M * N).fill(NaN))];
        try {
          ctx.dispatch(ctx.pipeline(kernel.code, `test_matmul_load_${V.name}`, kernel.layout), bufs, matmulParams(M, N, K), matmulDispatch(M, N, V));
          const out = new Float32Array(await ctx.read(bufs[2]!, M * N * 4));
          // the same product as A^T @ B^T of the stored buffers
          const ref = reference({ transA: true, transB: true, M, N, K, batch: 1, strideA: 0, strideB: 0, hooks: false }, a, bm, new Float32Array(N));
          let worst = 0;
          for (let i = 0; i < M * N; i++) worst = Math.max(worst, Number.isNaN(out[i]) ? Infinity : Math.abs(out[i]! - ref.c[i]!) / (ref.mag[i]! + 1e-6));
          expect(worst, `${M}x${N}x${K}`).toBeLessThan(TOL);
        } finally {
          for (const x of bufs) ctx.pool.release(x);
        }
      }
    });
});
