// WGSL text for C[M,N] = op(A) @ op(B), float32, row-major, optional batch.
// Pure text generation: no GPU calls here.
//
// Design, from measurements on lavapipe (llvmpipe runs each invocation as a
// SIMD lane, so workgroup memory + barriers are slow: a classic tiled kernel
// got 0.7-0.9 GFLOP/s, naive ~2): every invocation keeps a register block of
// rows x cols outputs and streams A and B straight from storage, so each
// loaded value feeds rows or cols FMAs. No workgroup memory, no barriers.
// The default (4x8 block, 8x8 workgroup, vec4) measured ~11-13 GFLOP/s at
// 64x1000x100 and ~17-18 at 512^3 and 1024^3 on 2 cores.
//
// M, N, K and batch strides are uniforms, so one pipeline serves every shape
// of a (transA, transB, variant) combination. The vec4 variants need
// K % 4 == 0, N % 4 == 0 (and M % 4 == 0 when transA); matmulVariantFor()
// falls back to the scalar variant of the same block shape otherwise.
//
// Bindings (group 0): 0 = A, 1 = B, 2 = C, 3.. = extraBindings, last = params.

export interface MatmulVariant {
  name: string;
  /** output rows per invocation */
  rows: number;
  /** output cols per invocation, a multiple of 4 */
  cols: number;
  /** workgroup size (x along N, y along M) */
  wg: readonly [number, number];
  /** vec4 loads/stores (needs the alignment above) */
  vec4: boolean;
}

const v = (name: string, rows: number, cols: number, wg: [number, number], vec4: boolean): MatmulVariant => ({ name, rows, cols, wg, vec4 });

export const MATMUL_VARIANTS = {
  'r4x8-8x8-vec4': v('r4x8-8x8-vec4', 4, 8, [8, 8], true),
  'r4x8-8x8': v('r4x8-8x8', 4, 8, [8, 8], false),
  'r4x8-8x16-vec4': v('r4x8-8x16-vec4', 4, 8, [8, 16], true),
  'r4x8-4x8-vec4': v('r4x8-4x8-vec4', 4, 8, [4, 8], true),
  'r4x4-8x8-vec4': v('r4x4-8x8-vec4', 4, 4, [8, 8], true),
  'r4x4-8x8': v('r4x4-8x8', 4, 4, [8, 8], false),
  'r8x4-8x8-vec4': v('r8x4-8x8-vec4', 8, 4, [8, 8], true),
  'r8x8-8x8-vec4': v('r8x8-8x8-vec4', 8, 8, [8, 8], true),
  'r4x16-8x8-vec4': v('r4x16-8x8-vec4', 4, 16, [8, 8], true),
  'r2x4-8x8-vec4': v('r2x4-8x8-vec4', 2, 4, [8, 8], true),
} satisfies Record<string, MatmulVariant>;

export type MatmulVariantName = keyof typeof MATMUL_VARIANTS;

/**
 * Fastest measured on lavapipe (bench/matmul-webgpu.ts), also in its scalar
 * form. Larger blocks (r4x16, r8x8) spill and lose; uncached LLVM compile of
 * this one is ~0.5-1.5 s per pipeline (Mesa's disk cache makes it ms later).
 */
export const DEFAULT_MATMUL_VARIANT: MatmulVariantName = 'r4x8-8x8-vec4';

export interface MatmulExtraBinding {
  name: string;
  /** WGSL store type, e.g. 'array<f32>' */
  type: string;
  access: 'read' | 'read_write';
}

export interface MatmulOptions {
  transA: boolean;
  transB: boolean;
  variant?: MatmulVariant | MatmulVariantName;
  /** WGSL f32 expression of the accumulated value; row and col are u32 expressions */
  epilogue?: (acc: string, row: string, col: string) => string;
  /** applied to every loaded A element (a scalar f32 expression) */
  prologueA?: (value: string, row: string, k: string) => string;
  /** applied to every loaded B element */
  prologueB?: (value: string, k: string, col: string) => string;
  /** storage buffers bound after C (bindings 3..), for the hooks to read */
  extraBindings?: readonly MatmulExtraBinding[];
  /** module-scope WGSL (helper functions) for the hooks */
  extraCode?: string;
  /** replaces the store of C: a statement run for every valid output element (fused epilogues that write several values) */
  epilogueCall?: (acc: string, row: string, col: string) => string;
  /** name of an extra read_write binding that receives the row sums of op(A) (a bias gradient riding along) */
  rowSumA?: string;
  /** instead of (or besides) storing them: a statement run once per row with its sum (fused consumers of the sum) */
  rowSumCall?: (sum: string, row: string) => string;
  /** u32 words appended to the params uniform as `p.x` (scalars of fused prologues and epilogues) */
  extraParamWords?: number;
}

export interface MatmulKernel {
  code: string;
  workgroupSize: [number, number, number];
  /** outputs computed by one workgroup */
  tile: { rows: number; cols: number };
  variant: MatmulVariant;
  /** binding index of the params uniform (= number of storage buffers) */
  paramsBinding: number;
}

export function resolveVariant(variant: MatmulVariant | MatmulVariantName = DEFAULT_MATMUL_VARIANT): MatmulVariant {
  const r = typeof variant === 'string' ? MATMUL_VARIANTS[variant] : variant;
  if (!r) throw new Error(`unknown matmul variant ${String(variant)}`);
  if (r.cols % 4 !== 0) throw new Error(`matmul variant ${r.name}: cols must be a multiple of 4`);
  return r;
}

/** Whether a vec4 variant is valid for this shape (else use its scalar twin). */
export function vec4Aligned(M: number, N: number, K: number, transA: boolean): boolean {
  return K % 4 === 0 && N % 4 === 0 && (!transA || M % 4 === 0);
}

/** The variant to use for a shape: the requested one, or its scalar twin when the shape is not vec4-aligned. */
export function matmulVariantFor(M: number, N: number, K: number, transA: boolean, variant: MatmulVariant | MatmulVariantName = DEFAULT_MATMUL_VARIANT): MatmulVariant {
  const r = resolveVariant(variant);
  if (!r.vec4 || (vec4Aligned(M, N, K, transA) && (!transA || r.rows % 4 === 0))) return r;
  return { ...r, name: r.name.replace(/-vec4$/, ''), vec4: false };
}

/** Workgroup counts for an [M,N] output (z = batch). */
export function matmulDispatch(M: number, N: number, variant: MatmulVariant | MatmulVariantName = DEFAULT_MATMUL_VARIANT, batch = 1): [number, number, number] {
  const r = resolveVariant(variant);
  return [Math.ceil(N / (r.cols * r.wg[0])), Math.ceil(M / (r.rows * r.wg[1])), batch];
}

/**
 * The params uniform: M, N, K, then per-batch element strides of A, B, C
 * (0 broadcasts an operand over the batch).
 */
export function matmulParams(M: number, N: number, K: number, strides?: { a: number; b: number; c: number }): ArrayBuffer {
  const s = strides ?? { a: M * K, b: K * N, c: M * N };
  return new Uint32Array([M, N, K, s.a, s.b, s.c, 0, 0]).buffer;
}

export function matmulWGSL(opts: MatmulOptions): MatmulKernel {
  const { transA, transB } = opts;
  const V = resolveVariant(opts.variant);
  const { rows: R, cols: C, vec4 } = V;
  const CG = C / 4; // column groups of 4
  const [WX, WY] = V.wg;
  if (vec4 && transA && R % 4 !== 0) throw new Error(`matmul ${V.name}: transposed-A vec4 loads need rows % 4 == 0`);
  const extras = opts.extraBindings ?? [];
  const proA = opts.prologueA ?? ((x: string) => x);
  const proB = opts.prologueB ?? ((x: string) => x);
  const epi = opts.epilogue ?? ((acc: string) => acc);
  const range = (n: number) => [...Array(n).keys()];
  const comp = (i: number) => 'xyzw'[i]!;
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  // Index expressions of A(row, k) and B(k, col) in elements.
  const idxA = (r: string, k: string) => (transA ? `offA + (${k}) * p.M + ${r}` : `offA + (${r}) * p.K + ${k}`);
  const idxB = (k: string, c: string) => (transB ? `offB + (${c}) * p.K + ${k}` : `offB + (${k}) * p.N + ${c}`);
  const elemT = vec4 ? 'vec4<f32>' : 'f32';

  emit(`// matmul ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} ${V.name}: ${R}x${C} outputs per invocation, workgroup ${WX}x${WY}`);
  const xWords = opts.extraParamWords ?? 0;
  const xField = xWords > 0 ? `, x: array<vec4<u32>, ${Math.ceil(xWords / 4)}>` : '';
  emit(`struct Params { M: u32, N: u32, K: u32, strideA: u32, strideB: u32, strideC: u32, pad0: u32, pad1: u32${xField} }`);
  emit(`@group(0) @binding(0) var<storage, read> A: array<${elemT}>;`);
  emit(`@group(0) @binding(1) var<storage, read> B: array<${elemT}>;`);
  emit(`@group(0) @binding(2) var<storage, read_write> C: array<${elemT}>;`);
  extras.forEach((e, i) => emit(`@group(0) @binding(${3 + i}) var<storage, ${e.access}> ${e.name}: ${e.type};`));
  const paramsBinding = 3 + extras.length;
  emit(`@group(0) @binding(${paramsBinding}) var<uniform> p: Params;`);
  if (opts.extraCode) emit(opts.extraCode);
  emit('');
  emit(`@compute @workgroup_size(${WX}, ${WY}, 1)`);
  emit('fn main(@builtin(global_invocation_id) gid: vec3<u32>) {');
  emit(`  let row0 = gid.y * ${R}u;`);
  emit(`  let col0 = gid.x * ${C}u;`);
  emit('  if (row0 >= p.M || col0 >= p.N) { return; }');
  emit('  let offA = gid.z * p.strideA;');
  emit('  let offB = gid.z * p.strideB;');
  emit('  let offC = gid.z * p.strideC;');
  // Edge blocks read clamped (valid, unused) rows/cols instead of branching in the K loop.
  for (const i of range(R)) emit(`  let r${i} = min(row0 + ${i}u, p.M - 1u);`);
  // A transposed vec4 load needs an aligned start row: clamp groups of 4 to M-4
  // (a group past it lies wholly beyond M, as M % 4 == 0, and is never stored).
  if (vec4 && transA) for (const g of range(R / 4)) emit(`  let ra${g} = min(row0 + ${4 * g}u, p.M - 4u);`);
  if (vec4) for (const j of range(CG)) emit(`  let c${j} = min(col0 + ${4 * j}u, p.N - 4u);`);
  else for (const j of range(C)) emit(`  let c${j} = min(col0 + ${j}u, p.N - 1u);`);
  for (const i of range(R)) for (const j of range(CG)) emit(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  const rowSum = opts.rowSumA ?? (opts.rowSumCall ? 'rowsum' : undefined);
  if (rowSum) for (const i of range(R)) emit(`  var rs${i}: f32 = 0.0;`);
  const sumRows = () => {
    if (!rowSum) return;
    for (const i of range(R)) emit(vec4 ? `    rs${i} = rs${i} + dot(a${i}, vec4<f32>(1.0));` : `    rs${i} = rs${i} + a${i};`);
  };

  if (!vec4) {
    emit('  for (var k = 0u; k < p.K; k = k + 1u) {');
    for (const i of range(R)) emit(`    let a${i} = ${proA(`A[${idxA(`r${i}`, 'k')}]`, `r${i}`, 'k')};`);
    for (const j of range(CG)) {
      const parts = range(4).map((q) => proB(`B[${idxB('k', `c${4 * j + q}`)}]`, 'k', `c${4 * j + q}`));
      emit(`    let b${j} = vec4<f32>(${parts.join(', ')});`);
    }
    for (const i of range(R)) for (const j of range(CG)) emit(`    acc${i}_${j} = fma(vec4<f32>(a${i}), b${j}, acc${i}_${j});`);
    sumRows();
    emit('  }');
  } else {
    // k advances by 4; a<i>[kk] is A(row i, k+kk), b<kk>_<j> the vec4 B(k+kk, cols of group j).
    const pro4A = (e: string, r: (q: number) => string, k: (q: number) => string) =>
      opts.prologueA ? `vec4<f32>(${range(4).map((q) => proA(`(${e}).${comp(q)}`, r(q), k(q))).join(', ')})` : e;
    const pro4B = (e: string, k: (q: number) => string, c: (q: number) => string) =>
      opts.prologueB ? `vec4<f32>(${range(4).map((q) => proB(`(${e}).${comp(q)}`, k(q), c(q))).join(', ')})` : e;
    emit('  for (var k = 0u; k < p.K; k = k + 4u) {');
    if (!transA) {
      for (const i of range(R)) emit(`    let a${i} = ${pro4A(`A[(${idxA(`r${i}`, 'k')}) / 4u]`, () => `r${i}`, (q) => `k + ${q}u`)};`);
    } else {
      // Transposed A: one vec4 holds 4 consecutive rows at a fixed k; regroup to per-row vectors.
      for (const kk of range(4))
        for (const g of range(R / 4))
          emit(`    let at${kk}_${g} = ${pro4A(`A[(${idxA(`ra${g}`, `k + ${kk}u`)}) / 4u]`, (q) => `ra${g} + ${q}u`, () => `k + ${kk}u`)};`);
      for (const i of range(R)) {
        const g = Math.floor(i / 4);
        emit(`    let a${i} = vec4<f32>(${range(4).map((kk) => `at${kk}_${g}.${comp(i % 4)}`).join(', ')});`);
      }
    }
    if (!transB) {
      for (const kk of range(4))
        for (const j of range(CG))
          emit(`    let b${kk}_${j} = ${pro4B(`B[(${idxB(`k + ${kk}u`, `c${j}`)}) / 4u]`, () => `k + ${kk}u`, (q) => `c${j} + ${q}u`)};`);
    } else {
      // Transposed B: one vec4 holds 4 consecutive k of a column; regroup to per-k vectors.
      for (const j of range(CG))
        for (const q of range(4))
          emit(`    let bt${j}_${q} = ${pro4B(`B[(${idxB('k', `c${j} + ${q}u`)}) / 4u]`, (kk) => `k + ${kk}u`, () => `c${j} + ${q}u`)};`);
      for (const kk of range(4))
        for (const j of range(CG)) emit(`    let b${kk}_${j} = vec4<f32>(${range(4).map((q) => `bt${j}_${q}.${comp(kk)}`).join(', ')});`);
    }
    for (const i of range(R))
      for (const j of range(CG)) {
        let e = `acc${i}_${j}`;
        for (const kk of range(4)) e = `fma(vec4<f32>(a${i}.${comp(kk)}), b${kk}_${j}, ${e})`;
        emit(`    acc${i}_${j} = ${e};`);
      }
    sumRows();
    emit('  }');
  }

  // Stores, guarded against the clamped edge rows/cols.
  for (const i of range(R)) {
    emit(`  if (row0 + ${i}u < p.M) {`);
    emit(`    let row = row0 + ${i}u;`);
    if (rowSum) emit(`    if (gid.x == 0u) { ${opts.rowSumCall ? opts.rowSumCall(`rs${i}`, 'row') : `${rowSum}[row] = rs${i};`} }`);
    for (const j of range(CG)) {
      const col = `col0 + ${4 * j}u`;
      if (opts.epilogueCall) {
        for (const q of range(4)) {
          emit(`    if (${col} + ${q}u < p.N) { ${opts.epilogueCall(`acc${i}_${j}.${comp(q)}`, 'row', `${col} + ${q}u`)} }`);
        }
        continue;
      }
      const val = (q: number) => epi(`acc${i}_${j}.${comp(q)}`, 'row', `${col} + ${q}u`);
      if (vec4) {
        const value = opts.epilogue ? `vec4<f32>(${range(4).map(val).join(', ')})` : `acc${i}_${j}`;
        emit(`    if (${col} < p.N) { C[(offC + row * p.N + ${col}) / 4u] = ${value}; }`);
      } else {
        for (const q of range(4)) emit(`    if (${col} + ${q}u < p.N) { C[offC + row * p.N + ${col} + ${q}u] = ${val(q)}; }`);
      }
    }
    emit('  }');
  }
  emit('}');
  return { code: lines.join('\n') + '\n', workgroupSize: [WX, WY, 1], tile: { rows: R * WY, cols: C * WX }, variant: V, paramsBinding };
}
