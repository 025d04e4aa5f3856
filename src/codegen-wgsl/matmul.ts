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
// Each load there is a loop over the lanes and components (a scalar load and a
// bounds branch each, whatever the address: Mesa 25.0's generated x86), so loads
// per FMA set the speed: the `subgroup` variants share a tile's rows of op(A)
// through subgroupBroadcast (a register shuffle), ~2.5-4x faster than the
// register kernel on the seed and GPT shapes (see MatmulVariant.subgroup).
// GPUs with real workgroup memory want the classic tiled kernel instead: the
// `shared` variants (1-4.5 GFLOP/s on lavapipe). The runtime's MatmulTuner
// (src/runtime/webgpu/matmul-tuner.ts) times candidates on the device.
//
// M, N, K and batch strides are uniforms, so one pipeline serves every shape
// of a (transA, transB, variant) combination. The vec4 variants need
// K % 4 == 0, N % 4 == 0 (and M % 4 == 0 when transA); matmulVariantFor()
// falls back to the scalar variant of the same block shape otherwise.
//
// Bindings (group 0): 0 = A, 1 = B, 2 = C, 3.. = extraBindings, last = params.

import { entryPoint, standalone, SUBGROUPS_ENABLE, type Builtin, type Namespace, type WgslLayout } from './namespace.ts';

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
  /**
   * The classic tiled kernel instead: the workgroup stages tileK-deep tiles of
   * A and B in workgroup memory and each invocation accumulates its block from
   * there. Scalar loads, any shape. Slow on lavapipe (see the top), the usual
   * winner on discrete GPUs, hence a tuning candidate.
   */
  shared?: { tileK: number };
  /**
   * Rows shared through the subgroup (SUBGROUP_LANES invocations in a row of the workgroup):
   * each lane loads a 1/8 share of its subgroup's `rows` rows of op(A) and subgroupBroadcast
   * hands every row to all lanes, which own `cols` columns each. On lavapipe every load at a
   * computed address costs a scalar load per lane and component (SSBO accesses are never
   * treated as uniform there) while a broadcast is a register shuffle, so a tile of 32 rows
   * costs each lane 4 row loads instead of 32 (see the top of the file). Needs the device's
   * subgroups exactly SUBGROUP_LANES wide (subgroupsFit), vec4 loads and wg.x a multiple of
   * SUBGROUP_LANES.
   */
  subgroup?: true;
}

const v = (name: string, rows: number, cols: number, wg: [number, number], vec4: boolean, shared?: { tileK: number }): MatmulVariant =>
  shared ? { name, rows, cols, wg, vec4, shared } : { name, rows, cols, wg, vec4 };
const sg = (name: string, rows: number, cols: number, wg: [number, number]): MatmulVariant => ({ name, rows, cols, wg, vec4: true, subgroup: true });

/** Lanes per subgroup the subgroup variants are written for (lavapipe's 8-wide AVX2 SIMD). */
export const SUBGROUP_LANES = 8;

/**
 * Whether the subgroup variants are valid on a device: subgroups of exactly SUBGROUP_LANES
 * invocations (then, with wg.x a multiple of it, each subgroup is 8 consecutive invocations
 * of one workgroup row, all sharing the row's rows of op(A)).
 */
export function subgroupsFit(info: { subgroupMinSize?: number; subgroupMaxSize?: number }, hasFeature: boolean): boolean {
  return hasFeature && info.subgroupMinSize === SUBGROUP_LANES && info.subgroupMaxSize === SUBGROUP_LANES;
}

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
  'sg-r16x4-32x2': sg('sg-r16x4-32x2', 16, 4, [32, 2]),
  'sg-r32x4-32x2': sg('sg-r32x4-32x2', 32, 4, [32, 2]),
  'sg-r32x4-16x4': sg('sg-r32x4-16x4', 32, 4, [16, 4]),
  'tiled16-r4x4-8x8': v('tiled16-r4x4-8x8', 4, 4, [8, 8], false, { tileK: 16 }),
  'tiled8-r8x8-8x8': v('tiled8-r8x8-8x8', 8, 8, [8, 8], false, { tileK: 8 }),
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
  /**
   * loads op(A)(row, k) itself (a scalar f32 expression; u32 row and k, `offA` in scope)
   * instead of indexing the A buffer, which is then bound as array<f32>: an operand read
   * through an index map (a convolution's im2col). Not with transA.
   */
  loadA?: (row: string, k: string) => string;
  /** the same for op(B)(k, col); not with transB */
  loadB?: (k: string, col: string) => string;
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
  /**
   * the same over 4 consecutive outputs at once (acc a vec4, col a multiple of 4, all four valid),
   * used instead of epilogueCall by the vec4 variants: its operands load and store as vec4
   */
  epilogueCall4?: (acc: string, row: string, col: string) => string;
  /** a reduction along K of the loaded elements of op(A), one value per row (a bias gradient riding along) */
  reduceA?: LineReduction;
  /** the same over op(B), one value per column */
  reduceB?: LineReduction;
  /** u32 words appended to the params uniform as `p.x` (scalars of fused prologues and epilogues) */
  extraParamWords?: number;
  /** module-scope names and bindings when the kernel is a part of a pack (the hooks' names are the caller's to prefix) */
  ns?: Namespace;
  /**
   * A batched product (see batchedMatmulParams): matrix z = gid.z + zBase sits at
   * (z / inner) * outer stride + (z % inner) * stride in each operand, and rows of A and B are
   * lda / ldb elements apart (strided views need no copy). main() then names the matrix `bz`,
   * which the hooks may read.
   */
  batched?: boolean;
}

/**
 * A reduction along K of one operand's loaded elements (after its prologue): per row of
 * op(A) or per column of op(B). The template knows nothing of which reduction: it starts
 * from `identity` and folds every loaded element in with `combine`.
 */
export interface LineReduction {
  /** WGSL f32 expression of the start value */
  identity: string;
  /** WGSL f32 expression combining the value so far with one element */
  combine: (acc: string, v: string) => string;
  /** the read_write binding each line's value is stored to, at the line's index */
  store?: string;
  /** instead: a statement run once per line with its value (fused consumers of it) */
  call?: (value: string, line: string) => string;
}

export interface MatmulKernel {
  code: string;
  workgroupSize: [number, number, number];
  /** outputs computed by one workgroup */
  tile: { rows: number; cols: number };
  variant: MatmulVariant;
  /** binding index of the params uniform (= number of storage buffers) */
  paramsBinding: number;
  layout: WgslLayout;
}

export function resolveVariant(variant: MatmulVariant | MatmulVariantName = DEFAULT_MATMUL_VARIANT): MatmulVariant {
  const r = typeof variant === 'string' ? MATMUL_VARIANTS[variant] : variant;
  if (!r) throw new Error(`unknown matmul variant ${String(variant)}`);
  if (r.cols % 4 !== 0) throw new Error(`matmul variant ${r.name}: cols must be a multiple of 4`);
  if (r.shared && r.vec4) throw new Error(`matmul variant ${r.name}: the tiled kernel loads scalars (vec4 must be false)`);
  if (r.subgroup && (!r.vec4 || r.shared || r.wg[0] % SUBGROUP_LANES !== 0 || r.rows % SUBGROUP_LANES !== 0)) {
    throw new Error(`matmul variant ${r.name}: a subgroup variant loads vec4, has wg.x and rows multiples of ${SUBGROUP_LANES} and no workgroup tiles`);
  }
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
  return scalarTwin(r);
}

/**
 * A vec4 variant's scalar form (the same blocks, scalar loads): what unaligned shapes run. The
 * subgroup kernel loads vec4 only, so its shapes take the default's scalar twin.
 */
export function scalarTwin(r: MatmulVariant): MatmulVariant {
  if (r.subgroup) return scalarTwin(MATMUL_VARIANTS[DEFAULT_MATMUL_VARIANT]);
  return r.vec4 ? { ...r, name: r.name.replace(/-vec4$/, ''), vec4: false } : r;
}

/** Workgroup counts for an [M,N] output (z = batch). */
export function matmulDispatch(M: number, N: number, variant: MatmulVariant | MatmulVariantName = DEFAULT_MATMUL_VARIANT, batch = 1): [number, number, number] {
  const r = resolveVariant(variant);
  return [Math.ceil(N / (r.cols * r.wg[0])), Math.ceil(M / (r.rows * r.wg[1])), batch];
}

/** The params struct's u32 words in order, plain and batched (the hooks' scalars follow, as `x`). */
const PARAM_WORDS = ['M', 'N', 'K', 'strideA', 'strideB', 'strideC', 'zero', 'pad1'] as const;
const BATCHED_PARAM_WORDS = ['M', 'N', 'K', 'strideA', 'strideB', 'strideC', 'inner', 'zBase', 'outerA', 'outerB', 'outerC', 'lda', 'ldb', 'zero', 'pad1', 'pad2'] as const;
/** Where each layout keeps `zero`, the word the rolled loops take their trip count from (rolledBound). */
export const ZERO_WORD = { plain: PARAM_WORDS.indexOf('zero'), batched: BATCHED_PARAM_WORDS.indexOf('zero') } as const;

/**
 * Throws unless the params' `zero` word is 0. A rolled loop runs max(zero, n) times, so any
 * other value would run it past its block, storing outside the tile: every writer of matmul
 * params (matmulParams, batchedMatmulParams, render-matmul's matmulKernelParams) checks here.
 */
export function checkZeroWord<W extends Uint32Array>(words: W, batched: boolean): W {
  const at = batched ? ZERO_WORD.batched : ZERO_WORD.plain;
  if (words[at] !== 0) {
    throw new Error(`internal compiler error: matmul params word ${at} (\`zero\`, the rolled loops' bound) is ${words[at]}, not 0: a writer put something else there`);
  }
  return words;
}

/**
 * The params uniform: M, N, K, then per-batch element strides of A, B, C
 * (0 broadcasts an operand over the batch), then `zero` (see rolledBound) and a pad word.
 */
export function matmulParams(M: number, N: number, K: number, strides?: { a: number; b: number; c: number }): ArrayBuffer {
  const s = strides ?? { a: M * K, b: K * N, c: M * N };
  return checkZeroWord(new Uint32Array([M, N, K, s.a, s.b, s.c, 0, 0]) as Uint32Array<ArrayBuffer>, false).buffer;
}

/** A batched product's layout: up to two levels of matrices (outer, inner) and the operands' row strides. */
export interface MatmulBatch {
  /** matrices in all (the z extent) */
  count: number;
  /** matrices per outer step (count when there is one level) */
  inner: number;
  /** element strides per inner step, then per outer step, of A, B and C */
  stride: { a: number; b: number; c: number };
  outer: { a: number; b: number; c: number };
  /** elements between rows of A and of B as stored (K or M for a dense A, N or K for a dense B) */
  lda: number;
  ldb: number;
}

/** The params uniform of a batched kernel (MatmulOptions.batched), its first matrix zBase (word 13 is `zero`: see rolledBound); then `extraWords` zero words for the hooks. */
export function batchedMatmulParams(M: number, N: number, K: number, b: MatmulBatch, zBase = 0, extraWords = 0): Uint32Array {
  const words = new Uint32Array(16 + Math.ceil(extraWords / 4) * 4);
  words.set([M, N, K, b.stride.a, b.stride.b, b.stride.c, b.inner, zBase, b.outer.a, b.outer.b, b.outer.c, b.lda, b.ldb, 0, 0, 0]);
  return checkZeroWord(words, true);
}

/** Whether a vec4 variant may read this batch: every matrix and row starts on a multiple of 4 elements. */
export function batchVec4Aligned(b: MatmulBatch): boolean {
  return [b.stride.a, b.stride.b, b.stride.c, b.outer.a, b.outer.b, b.outer.c, b.lda, b.ldb].every((x) => x % 4 === 0);
}

/** What both kernel bodies share: the resolved options and index/hook helpers. */
interface Gen {
  opts: MatmulOptions;
  V: MatmulVariant;
  emit: (s: string) => void;
  proA: (value: string, row: string, k: string) => string;
  proB: (value: string, k: string, col: string) => string;
  epi: (acc: string, row: string, col: string) => string;
  /** element index of A(row, k) / B(k, col) */
  idxA: (r: string, k: string) => string;
  idxB: (k: string, c: string) => string;
  /** the operand reductions, when wanted */
  redA: LineReduction | undefined;
  redB: LineReduction | undefined;
  /** scalar loads of op(A)(row, k) / op(B)(k, col): from the buffer, or through the caller's loadA / loadB */
  ldA: (r: string, k: string) => string;
  ldB: (k: string, c: string) => string;
  ns: Namespace;
  /** module-scope names: the params uniform, the operand buffers, the workgroup tiles */
  P: string;
  nA: string;
  nB: string;
  nC: string;
  tileA: string;
  tileB: string;
}

const range = (n: number) => [...Array(n).keys()];
const comp = (i: number) => 'xyzw'[i]!;

export function matmulWGSL(opts: MatmulOptions): MatmulKernel {
  const { transA, transB } = opts;
  const V = resolveVariant(opts.variant);
  const lines: string[] = [];
  const storage = 3 + (opts.extraBindings?.length ?? 0);
  const ns = opts.ns ?? standalone(storage);
  const P = `${ns.prefix}p`;
  // elements between stored rows of A and B
  const rowsA = opts.batched ? `${P}.lda` : transA ? `${P}.M` : `${P}.K`;
  const rowsB = opts.batched ? `${P}.ldb` : transB ? `${P}.K` : `${P}.N`;
  const g: Gen = {
    ns,
    P,
    nA: `${ns.prefix}A`,
    nB: `${ns.prefix}B`,
    nC: `${ns.prefix}C`,
    tileA: `${ns.prefix}mmTileA`,
    tileB: `${ns.prefix}mmTileB`,
    opts,
    V,
    emit: (s) => lines.push(s),
    proA: opts.prologueA ?? ((x: string) => x),
    proB: opts.prologueB ?? ((x: string) => x),
    epi: opts.epilogue ?? ((acc: string) => acc),
    idxA: (r, k) => (transA ? `offA + (${k}) * ${rowsA} + ${r}` : `offA + (${r}) * ${rowsA} + ${k}`),
    idxB: (k, c) => (transB ? `offB + (${c}) * ${rowsB} + ${k}` : `offB + (${k}) * ${rowsB} + ${c}`),
    redA: opts.reduceA,
    redB: opts.reduceB,
    ldA: (r, k) => (opts.loadA ? opts.loadA(r, k) : `${ns.prefix}A[${g.idxA(r, k)}]`),
    ldB: (k, c) => (opts.loadB ? opts.loadB(k, c) : `${ns.prefix}B[${g.idxB(k, c)}]`),
  };
  if ((opts.loadA && transA) || (opts.loadB && transB)) throw new Error('matmul: an operand loaded through loadA/loadB is never transposed');
  if (V.vec4 && transA && V.rows % 4 !== 0) throw new Error(`matmul ${V.name}: transposed-A vec4 loads need rows % 4 == 0`);
  const paramsBinding = emitHeader(g);
  if (V.shared) emitTiledMain(g, V.shared.tileK);
  else emitRegisterMain(g);
  const [WX, WY] = V.wg;
  const layout: WgslLayout = {
    storage: ['read', 'read', 'read_write', ...(opts.extraBindings ?? []).map((e) => e.access)],
    uniforms: 1,
    workgroupSize: [WX, WY, 1],
    workgroupBytes: V.shared ? 4 * V.shared.tileK * (tileStrideA(V, transA) + tileStrideB(V, transB)) : 0,
    builtins: V.shared ? TILED_BUILTINS : V.subgroup ? SUBGROUP_BUILTINS : REGISTER_BUILTINS,
  };
  return { code: lines.join('\n') + '\n', workgroupSize: [WX, WY, 1], tile: { rows: V.rows * WY, cols: V.cols * WX }, variant: V, paramsBinding, layout };
}

const REGISTER_BUILTINS: Builtin[] = [{ kind: 'global_invocation_id', name: 'gid', type: 'vec3<u32>' }];
const SUBGROUP_BUILTINS: Builtin[] = [...REGISTER_BUILTINS, { kind: 'subgroup_invocation_id', name: 'sl', type: 'u32' }];
const TILED_BUILTINS: Builtin[] = [
  { kind: 'global_invocation_id', name: 'gid', type: 'vec3<u32>' },
  { kind: 'workgroup_id', name: 'wid', type: 'vec3<u32>' },
  { kind: 'local_invocation_id', name: 'lid', type: 'vec3<u32>' },
];

// Tiles are stored k-major; a tile whose global reads run along k is
// written across rows with a stride of a whole row, so pad that row by one
// word to keep the stores off a single memory bank on GPUs.
const tileStrideA = (V: MatmulVariant, transA: boolean) => (transA ? V.rows * V.wg[1] : V.rows * V.wg[1] + 1);
const tileStrideB = (V: MatmulVariant, transB: boolean) => (transB ? V.cols * V.wg[0] + 1 : V.cols * V.wg[0]);

/** Comment, params struct, bindings and the hooks' module-scope code; returns the params binding. */
function emitHeader({ opts, V, emit, ns, P, nA, nB, nC }: Gen): number {
  const [WX, WY] = V.wg;
  // a directive opens the module: a pack or a folded grid writes it for its parts (namespace.ts)
  if (V.subgroup && ns.entry === 'compute') emit(SUBGROUPS_ENABLE);
  const what = V.shared ? `tiles of K ${V.shared.tileK} in workgroup memory, ` : V.subgroup ? `rows of op(A) shared by subgroups of ${SUBGROUP_LANES}, ` : '';
  emit(`// matmul ${opts.transA ? 'T' : 'N'}${opts.transB ? 'T' : 'N'} ${V.name}: ${what}${V.rows}x${V.cols} outputs per invocation, workgroup ${WX}x${WY}`);
  const xWords = opts.extraParamWords ?? 0;
  const xField = xWords > 0 ? `, x: array<vec4<u32>, ${Math.ceil(xWords / 4)}>` : '';
  const elemT = V.vec4 ? 'vec4<f32>' : 'f32';
  // `zero`, 0 at run time in both layouts, bounds the rolled loops (rolledBound)
  const fields = (opts.batched ? BATCHED_PARAM_WORDS : PARAM_WORDS).map((f) => `${f}: u32`).join(', ');
  emit(`struct ${ns.prefix}Params { ${fields}${xField} }`);
  emit(`@group(0) @binding(${ns.storage(0)}) var<storage, read> ${nA}: array<${opts.loadA ? 'f32' : elemT}>;`);
  emit(`@group(0) @binding(${ns.storage(1)}) var<storage, read> ${nB}: array<${opts.loadB ? 'f32' : elemT}>;`);
  emit(`@group(0) @binding(${ns.storage(2)}) var<storage, read_write> ${nC}: array<${elemT}>;`);
  const extras = opts.extraBindings ?? [];
  extras.forEach((e, i) => emit(`@group(0) @binding(${ns.storage(3 + i)}) var<storage, ${e.access}> ${e.name}: ${e.type};`));
  const paramsBinding = ns.uniform(0);
  emit(`@group(0) @binding(${paramsBinding}) var<uniform> ${P}: ${ns.prefix}Params;`);
  if (opts.extraCode) emit(opts.extraCode);
  emit('');
  return paramsBinding;
}

/** offA/offB/offC: where this invocation's matrices start (and bz, the matrix, when batched). */
function emitBatchOffsets({ opts, emit, P }: Gen): void {
  if (!opts.batched) {
    emit(`  let offA = gid.z * ${P}.strideA;`);
    emit(`  let offB = gid.z * ${P}.strideB;`);
    emit(`  let offC = gid.z * ${P}.strideC;`);
    return;
  }
  emit(`  let bz = gid.z + ${P}.zBase;`);
  emit(`  let bzo = bz / ${P}.inner;`);
  emit(`  let bzi = bz % ${P}.inner;`);
  for (const x of ['A', 'B', 'C']) emit(`  let off${x} = bzo * ${P}.outer${x} + bzi * ${P}.stride${x};`);
}

/** Register-blocked, straight from storage (see the top of the file). */
function emitRegisterMain(g: Gen): void {
  const { opts, V, emit, proA, proB, epi, idxA, idxB, ldA, ldB, redA, redB, P, nA, nB, nC } = g;
  const { transA, transB } = opts;
  const { rows: R, cols: C, vec4 } = V;
  const CG = C / 4; // column groups of 4
  const [WX, WY] = V.wg;
  const shared = !!V.subgroup;
  const L = SUBGROUP_LANES;
  for (const l of entryPoint(g.ns, `${WX}, ${WY}, 1`, shared ? SUBGROUP_BUILTINS : REGISTER_BUILTINS)) emit(l);
  // subgroup variant: the R rows from row0 belong to the whole subgroup (one workgroup row, so gid.y is theirs)
  emit(`  let row0 = gid.y * ${R}u;`);
  emit(`  let col0 = gid.x * ${C}u;`);
  // the broadcasts need every lane of the subgroup in the K loop: lanes past N load clamped columns and store nothing
  // (WGSL's uniformity analysis cannot see that row0 is the subgroup's: no early return at all, clamped rows)
  if (!shared) emit(`  if (row0 >= ${P}.M || col0 >= ${P}.N) { return; }`);
  emitBatchOffsets(g);
  // Edge blocks read clamped (valid, unused) rows/cols instead of branching in the K loop.
  if (!shared) for (const i of range(R)) emit(`  let r${i} = min(row0 + ${i}u, ${P}.M - 1u);`);
  // A transposed vec4 load needs an aligned start row: clamp groups of 4 to M-4
  // (a group past it lies wholly beyond M, as M % 4 == 0, and is never stored).
  if (vec4 && transA && !shared) for (const g of range(R / 4)) emit(`  let ra${g} = min(row0 + ${4 * g}u, ${P}.M - 4u);`);
  // the subgroup's share of rows this lane loads: row row0 + L*q + sl (plain A, vec4 along K),
  // or the 4 rows row0 + 4L*q + 4*sl (transposed A, vec4 along M)
  const shares = shared ? (transA ? Math.ceil(R / (4 * L)) : R / L) : 0;
  if (shared && !transA) for (const q of range(shares)) emit(`  let rl${q} = min(row0 + ${L * q}u + sl, ${P}.M - 1u);`);
  if (shared && transA) for (const q of range(shares)) emit(`  let rl${q} = min(row0 + ${4 * L * q}u + 4u * sl, ${P}.M - 4u);`);
  if (vec4) for (const j of range(CG)) emit(`  let c${j} = min(col0 + ${4 * j}u, ${P}.N - 4u);`);
  else for (const j of range(C)) emit(`  let c${j} = min(col0 + ${j}u, ${P}.N - 1u);`);
  for (const i of range(R)) for (const j of range(CG)) emit(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  declareLines(g);
  // every loaded element of this step joins its row's (column's) reduction
  const reduceLines = () => {
    if (redA) for (const i of range(R)) for (const kk of range(vec4 ? 4 : 1)) emit(`    rs${i} = ${redA.combine(`rs${i}`, vec4 ? `a${i}.${comp(kk)}` : `a${i}`)};`);
    if (redB) {
      for (const kk of range(vec4 ? 4 : 1))
        for (const j of range(CG)) for (const q of range(4)) emit(`    cs${4 * j + q} = ${redB.combine(`cs${4 * j + q}`, `${vec4 ? `b${kk}_${j}` : `b${j}`}.${comp(q)}`)};`);
    }
  };

  if (!vec4) {
    emit(`  for (var k = 0u; k < ${P}.K; k = k + 1u) {`);
    for (const i of range(R)) emit(`    let a${i} = ${proA(ldA(`r${i}`, 'k'), `r${i}`, 'k')};`);
    for (const j of range(CG)) {
      const parts = range(4).map((q) => proB(ldB('k', `c${4 * j + q}`), 'k', `c${4 * j + q}`));
      emit(`    let b${j} = vec4<f32>(${parts.join(', ')});`);
    }
    for (const i of range(R)) for (const j of range(CG)) emit(`    acc${i}_${j} = fma(vec4<f32>(a${i}), b${j}, acc${i}_${j});`);
    reduceLines();
    emit('  }');
  } else {
    // k advances by 4; a<i>[kk] is A(row i, k+kk), b<kk>_<j> the vec4 B(k+kk, cols of group j).
    const pro4A = (e: string, r: (q: number) => string, k: (q: number) => string) =>
      opts.prologueA ? `vec4<f32>(${range(4).map((q) => proA(`(${e}).${comp(q)}`, r(q), k(q))).join(', ')})` : e;
    const pro4B = (e: string, k: (q: number) => string, c: (q: number) => string) =>
      opts.prologueB ? `vec4<f32>(${range(4).map((q) => proB(`(${e}).${comp(q)}`, k(q), c(q))).join(', ')})` : e;
    emit(`  for (var k = 0u; k < ${P}.K; k = k + 4u) {`);
    const load4 = (r: string) => (opts.loadA ? `vec4<f32>(${range(4).map((q) => ldA(r, `k + ${q}u`)).join(', ')})` : `${nA}[(${idxA(r, 'k')}) / 4u]`);
    if (shared && !transA) {
      // a<i> = A(row0 + i, k..k+3), loaded by lane i % L as its share i / L
      for (const q of range(shares)) emit(`    let la${q} = ${pro4A(load4(`rl${q}`), () => `rl${q}`, (kk) => `k + ${kk}u`)};`);
      for (const i of range(R)) emit(`    let a${i} = subgroupBroadcast(la${Math.floor(i / L)}, ${i % L}u);`);
    } else if (shared) {
      // la<kk>_<q>: rows rl<q>..+3 at k+kk; row row0 + i is component i % 4 of lane (i % 4L) / 4's share i / 4L
      for (const kk of range(4))
        for (const q of range(shares))
          emit(`    let la${kk}_${q} = ${pro4A(`${nA}[(${idxA(`rl${q}`, `k + ${kk}u`)}) / 4u]`, (c) => `rl${q} + ${c}u`, () => `k + ${kk}u`)};`);
      for (const i of range(R)) {
        const q = Math.floor(i / (4 * L));
        const lane = Math.floor((i % (4 * L)) / 4);
        emit(`    let a${i} = vec4<f32>(${range(4).map((kk) => `subgroupBroadcast(la${kk}_${q}.${comp(i % 4)}, ${lane}u)`).join(', ')});`);
      }
    } else if (!transA) {
      for (const i of range(R)) emit(`    let a${i} = ${pro4A(load4(`r${i}`), () => `r${i}`, (q) => `k + ${q}u`)};`);
    } else {
      // Transposed A: one vec4 holds 4 consecutive rows at a fixed k; regroup to per-row vectors.
      for (const kk of range(4))
        for (const g of range(R / 4))
          emit(`    let at${kk}_${g} = ${pro4A(`${nA}[(${idxA(`ra${g}`, `k + ${kk}u`)}) / 4u]`, (q) => `ra${g} + ${q}u`, () => `k + ${kk}u`)};`);
      for (const i of range(R)) {
        const g = Math.floor(i / 4);
        emit(`    let a${i} = vec4<f32>(${range(4).map((kk) => `at${kk}_${g}.${comp(i % 4)}`).join(', ')});`);
      }
    }
    if (!transB) {
      for (const kk of range(4))
        for (const j of range(CG))
          emit(`    let b${kk}_${j} = ${pro4B(opts.loadB ? `vec4<f32>(${range(4).map((q) => ldB(`k + ${kk}u`, `c${j} + ${q}u`)).join(', ')})` : `${nB}[(${idxB(`k + ${kk}u`, `c${j}`)}) / 4u]`, () => `k + ${kk}u`, (q) => `c${j} + ${q}u`)};`);
    } else {
      // Transposed B: one vec4 holds 4 consecutive k of a column; regroup to per-k vectors.
      for (const j of range(CG))
        for (const q of range(4))
          emit(`    let bt${j}_${q} = ${pro4B(`${nB}[(${idxB('k', `c${j} + ${q}u`)}) / 4u]`, (kk) => `k + ${kk}u`, () => `c${j} + ${q}u`)};`);
      for (const kk of range(4))
        for (const j of range(CG)) emit(`    let b${kk}_${j} = vec4<f32>(${range(4).map((q) => `bt${j}_${q}.${comp(kk)}`).join(', ')});`);
    }
    for (const i of range(R))
      for (const j of range(CG)) {
        let e = `acc${i}_${j}`;
        for (const kk of range(4)) e = `fma(vec4<f32>(a${i}.${comp(kk)}), b${kk}_${j}, ${e})`;
        emit(`    acc${i}_${j} = ${e};`);
      }
    reduceLines();
    emit('  }');
  }

  emitRolledLines(g);
  const wideCall = vec4 ? opts.epilogueCall4 : undefined;
  if (wideCall || opts.epilogueCall) {
    if (wideCall) emitRolledEpilogue(g, 4, wideCall);
    else emitRolledEpilogue(g, 1, opts.epilogueCall!);
    emit('}');
    return;
  }
  // Stores, guarded against the clamped edge rows/cols.
  for (const i of range(R)) {
    emit(`  if (row0 + ${i}u < ${P}.M) {`);
    emit(`    let row = row0 + ${i}u;`);
    for (const j of range(CG)) {
      const col = `col0 + ${4 * j}u`;
      const val = (q: number) => epi(`acc${i}_${j}.${comp(q)}`, 'row', `${col} + ${q}u`);
      if (vec4) {
        const value = opts.epilogue ? `vec4<f32>(${range(4).map(val).join(', ')})` : `acc${i}_${j}`;
        emit(`    if (${col} < ${P}.N) { ${nC}[(offC + row * ${P}.N + ${col}) / 4u] = ${value}; }`);
      } else {
        for (const q of range(4)) emit(`    if (${col} + ${q}u < ${P}.N) { ${nC}[offC + row * ${P}.N + ${col} + ${q}u] = ${val(q)}; }`);
      }
    }
    emit('  }');
  }
  emit('}');
}

/**
 * Fused epilogues that write several values (an optimizer update riding on a weight
 * gradient, say) run in a loop over the block rather than unrolled once per output: the
 * unrolled form multiplied LLVM's work on lavapipe (5-6 s to compile one Adam-fused
 * matmul cold), while the loop costs nothing measurable at run time, as it runs once per
 * output against the K loop's K/4 iterations.
 *
 * `width` 4 is the vec4 form: one call per 4 consecutive outputs. On lavapipe every load
 * or store at a computed address costs scalar memory operations per lane, so an epilogue
 * that reads and writes several tensors (Adam: 3 loads and 4 stores per weight) is bound
 * by their count; vec4 accesses cut it by four.
 */
function emitRolledEpilogue({ V, emit, P }: Gen, width: 1 | 4, call: (acc: string, row: string, col: string) => string): void {
  const { rows: R, cols: C } = V;
  const CG = C / 4;
  const perRow = C / width;
  emit(`  var accv = array<vec4<f32>, ${R * CG}>(${range(R).flatMap((i) => range(CG).map((j) => `acc${i}_${j}`)).join(', ')});`);
  emit(`  for (var e = 0u; e < ${rolledBound(P, R * perRow)}; e = e + 1u) {`);
  emit(`    let row = row0 + e / ${perRow}u;`);
  emit(`    let col = col0 + (e % ${perRow}u)${width === 4 ? ' * 4u' : ''};`);
  emit(`    if (row < ${P}.M && col < ${P}.N) { ${call(width === 4 ? 'accv[e]' : 'accv[e / 4u][e % 4u]', 'row', 'col')} }`);
  emit('  }');
}

/**
 * The trip count of a rolled loop over the block, `n`, as the compiler cannot know it: the
 * params word `zero` is 0 at run time (ZERO_WORD; every writer checks it, checkZeroWord), so this is n. A
 * constant trip count let Mesa's NIR unroll the loop again whenever its body looked small
 * enough, and a body that calls a fused epilogue (inlined) was: the Adam-fused vec4 weight
 * gradient of the seed demo cost ~22 s of LLVM CPU time cold unrolled, ~5 s rolled, and its
 * forward matmul (bias + relu) 3 s against 0.9 s. A rolled loop runs once per output
 * group against the K loop's K/4 iterations, so it costs nothing measurable at run time.
 */
const rolledBound = (P: string, n: number) => `max(${P}.zero, ${n}u)`;

/** Declares the operand reductions' accumulators: rs<i> per row, cs<j> per column of the block. */
function declareLines({ V, emit, redA, redB }: Gen): void {
  if (redA) for (const i of range(V.rows)) emit(`  var rs${i}: f32 = ${redA.identity};`);
  if (redB) for (const j of range(V.cols)) emit(`  var cs${j}: f32 = ${redB.identity};`);
}

/** What a line reduction does with a line's value: store it, or run its consumers. */
const lineStatement = (r: LineReduction, value: string, line: string) => (r.call ? r.call(value, line) : `${r.store!}[${line}] = ${value};`);

/**
 * The operand reductions' values, once per row (by the first column of invocations) and per
 * column (by the first row), in a loop for the same reason as the epilogue (register kernel:
 * rows row0 + i, columns col0 + j).
 */
function emitRolledLines({ V, emit, P, redA, redB }: Gen): void {
  if (redA) {
    emit('  if (gid.x == 0u) {');
    emit(`    var rsv = array<f32, ${V.rows}>(${range(V.rows).map((i) => `rs${i}`).join(', ')});`);
    emit(`    for (var i = 0u; i < ${rolledBound(P, V.rows)}; i = i + 1u) {`);
    emit('      let row = row0 + i;');
    emit(`      if (row < ${P}.M) { ${lineStatement(redA, 'rsv[i]', 'row')} }`);
    emit('    }');
    emit('  }');
  }
  if (redB) {
    emit('  if (gid.y == 0u) {');
    emit(`    var csv = array<f32, ${V.cols}>(${range(V.cols).map((j) => `cs${j}`).join(', ')});`);
    emit(`    for (var j = 0u; j < ${rolledBound(P, V.cols)}; j = j + 1u) {`);
    emit('      let col = col0 + j;');
    emit(`      if (col < ${P}.N) { ${lineStatement(redB, 'csv[j]', 'col')} }`);
    emit('    }');
    emit('  }');
  }
}

/**
 * The classic workgroup-memory kernel. The workgroup computes a TM x TN tile
 * (TM = rows * wg.y, TN = cols * wg.x): per K step it stages op(A)[TM x TK]
 * and op(B)[TK x TN] in workgroup memory (prologues applied, zeros past the
 * edges so partial tiles need no special case), then each invocation
 * accumulates rows x cols outputs from there. Its outputs are strided by the
 * workgroup size (row = lid.y + i * wg.y, col = lid.x + j * wg.x), so
 * neighbouring invocations read neighbouring words of the tile and store
 * neighbouring words of C. There is no early return: every invocation must
 * reach the barriers, so loads and stores are guarded instead.
 */
function emitTiledMain(g: Gen, TK: number): void {
  const { opts, V, emit, P, tileA, tileB } = g;
  const { rows: R, cols: C } = V;
  const [WX, WY] = V.wg;
  const TM = R * WY;
  const TN = C * WX;
  const strideA = tileStrideA(V, opts.transA);
  const strideB = tileStrideB(V, opts.transB);
  emit(`var<workgroup> ${tileA}: array<f32, ${TK * strideA}>;`);
  emit(`var<workgroup> ${tileB}: array<f32, ${TK * strideB}>;`);
  emit('');
  for (const l of entryPoint(g.ns, `${WX}, ${WY}, 1`, TILED_BUILTINS)) emit(l);
  emit(`  let tileRow = wid.y * ${TM}u;`);
  emit(`  let tileCol = wid.x * ${TN}u;`);
  emit(`  let li = lid.y * ${WX}u + lid.x;`);
  emitBatchOffsets(g);
  for (const i of range(R)) for (const j of range(C / 4)) emit(`  var acc${i}_${j} = vec4<f32>(0.0);`);
  declareLines(g);
  emit(`  for (var k0 = 0u; k0 < ${P}.K; k0 = k0 + ${TK}u) {`);
  emitTileLoads(g, 'A', TM, TK, strideA);
  emitTileLoads(g, 'B', TN, TK, strideB);
  emit('    workgroupBarrier();');
  emit(`    for (var kk = 0u; kk < ${TK}u; kk = kk + 1u) {`);
  for (const i of range(R)) emit(`      let a${i} = ${tileA}[kk * ${strideA}u + lid.y + ${i * WY}u];`);
  for (const j of range(C / 4)) {
    const parts = range(4).map((q) => `${tileB}[kk * ${strideB}u + lid.x + ${(4 * j + q) * WX}u]`);
    emit(`      let b${j} = vec4<f32>(${parts.join(', ')});`);
  }
  for (const i of range(R)) for (const j of range(C / 4)) emit(`      acc${i}_${j} = fma(vec4<f32>(a${i}), b${j}, acc${i}_${j});`);
  // the tile is zero past K: only elements inside it join the reductions (a max of them all is not a max with 0)
  if (g.redA || g.redB) {
    emit(`      if (k0 + kk < ${P}.K) {`);
    if (g.redA) for (const i of range(R)) emit(`        rs${i} = ${g.redA.combine(`rs${i}`, `a${i}`)};`);
    if (g.redB) for (const j of range(C / 4)) for (const q of range(4)) emit(`        cs${4 * j + q} = ${g.redB.combine(`cs${4 * j + q}`, `b${j}.${comp(q)}`)};`);
    emit('      }');
  }
  emit('    }');
  emit('    workgroupBarrier();');
  emit('  }');
  emitTiledStores(g);
  emit('}');
}

/**
 * Stages one operand's tile: consecutive invocations load consecutive
 * elements along the operand's contiguous dimension in memory (k for A and
 * transposed B, rows for transposed A, cols for B).
 */
function emitTileLoads(g: Gen, which: 'A' | 'B', span: number, TK: number, stride: number): void {
  const { opts, V, emit, P, nA, nB, tileA, tileB } = g;
  const alongK = which === 'A' ? !opts.transA : opts.transB;
  const base = which === 'A' ? 'tileRow' : 'tileCol';
  const limit = which === 'A' ? `${P}.M` : `${P}.N`;
  const load = which === 'A' ? g.proA(g.ldA('gs', 'gk'), 'gs', 'gk') : g.proB(g.ldB('gk', 'gs'), 'gk', 'gs');
  emit(`    for (var t = li; t < ${span * TK}u; t = t + ${V.wg[0] * V.wg[1]}u) {`);
  emit(alongK ? `      let ts = t / ${TK}u;` : `      let ts = t % ${span}u;`);
  emit(alongK ? `      let tk = t % ${TK}u;` : `      let tk = t / ${span}u;`);
  emit(`      let gs = ${base} + ts;`);
  emit('      let gk = k0 + tk;');
  emit('      var tv: f32 = 0.0;');
  emit(`      if (gs < ${limit} && gk < ${P}.K) { tv = ${load}; }`);
  emit(`      ${which === 'A' ? tileA : tileB}[tk * ${stride}u + ts] = tv;`);
  emit('    }');
}

function emitTiledStores({ opts, V, emit, epi, redA, redB, P, nC }: Gen): void {
  const { rows: R, cols: C } = V;
  const [WX, WY] = V.wg;
  for (const j of range(C)) emit(`  let col${j} = tileCol + lid.x + ${j * WX}u;`);
  for (const i of range(R)) {
    emit(`  if (tileRow + lid.y + ${i * WY}u < ${P}.M) {`);
    emit(`    let row = tileRow + lid.y + ${i * WY}u;`);
    // the invocations of the first column strip own each row exactly once (per batch)
    if (redA) emit(`    if (gid.x == 0u) { ${lineStatement(redA, `rs${i}`, 'row')} }`);
    for (const j of range(C)) {
      const acc = `acc${i}_${j >> 2}.${comp(j & 3)}`;
      const store = opts.epilogueCall ? opts.epilogueCall(acc, 'row', `col${j}`) : `${nC}[offC + row * ${P}.N + col${j}] = ${epi(acc, 'row', `col${j}`)};`;
      emit(`    if (col${j} < ${P}.N) { ${store} }`);
    }
    emit('  }');
  }
  // and those of the first row strip each column
  if (redB) for (const j of range(C)) emit(`  if (gid.y == 0u && col${j} < ${P}.N) { ${lineStatement(redB, `cs${j}`, `col${j}`)} }`);
}
