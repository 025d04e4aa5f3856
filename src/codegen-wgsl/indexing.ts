/**
 * Kernels of the index primitives: slice (a strided read), sliceScatter (a source written
 * over a strided slice of a base: cat, and slice's gradient), gather along a dim, and scatterAdd (gather's gradient,
 * computed from the destination side: each output element loops over the index entries
 * that could land on it, in a fixed order, so no float atomics are needed and the sums
 * are the same on every run). Every tensor is read through strides from the params, so
 * the compiler binds views (a transposed operand, an expanded index) without copying.
 * One pipeline per (op, rank, dtype); sizes are uniforms.
 *
 * An index outside its dim cannot raise on the device: gather then writes a poison value
 * (NaN for float32, -2^31 for int32), never a plausible number, and scatterAdd drops it.
 *
 * Params (u32 words): n (output elements), out shape[R], then per op:
 *   slice:        base offset, strides[R] (input stride * step per output dim)
 *   sliceScatter: starts[R], steps[R], source shape[R], source strides[R], base strides[R]
 *   gather:       dim, size of dim, input strides[R], index strides[R]
 *   scatterAdd:   dim, index shape[R], source strides[R], index strides[R]
 *   im2col:       the window map's words (src/ir/window.ts, WINDOW_WORDS)
 *   col2im:       the window map's words (its source: the output), the patch matrix's strides[2]
 *   col2imAt:     the window map's words, g's strides[4], the index's strides[4]
 */
import type { DType } from '../ir/dtype.ts';
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import type { IndexBody } from '../passes/kernel-ir.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { windowGradWGSL, windowLoadWGSL, windowMap, windowWordValues, WINDOW_WORDS, type WindowPlace, type WindowWord } from '../ir/window.ts';
import { paramsDecl, paramWords, wgslType } from './kernel-spec.ts';
import { entryPoint, standalone, type Builtin, type Namespace } from './namespace.ts';

export const INDEX_WORKGROUP = 64;
export type IndexOp = 'slice' | 'sliceScatter' | 'gather' | 'scatterAdd' | 'im2col' | 'col2im' | 'col2imAt';
export const INDEX_OPS: readonly string[] = ['slice', 'sliceScatter', 'gather', 'scatterAdd', 'im2col', 'col2im', 'col2imAt'];

export interface IndexSpec {
  op: IndexOp;
  rank: number;
  /** dtype of the data read and written (the index is int32) */
  dtype: DType;
}

/** How the params of each op are laid out: the word where each group starts. */
function layout(spec: IndexSpec) {
  const R = spec.rank;
  const at = { shape: 1, a: 1 + R, b: 0, c: 0, d: 0, words: 0 };
  switch (spec.op) {
    case 'slice':
      at.b = at.a + 1;
      at.words = at.b + R;
      break;
    case 'im2col':
      at.words = at.a + WINDOW_WORDS.length;
      break;
    case 'col2im':
      at.b = at.a + WINDOW_WORDS.length;
      at.words = at.b + 2;
      break;
    case 'col2imAt':
      at.b = at.a + WINDOW_WORDS.length;
      at.c = at.b + 4;
      at.words = at.c + 4;
      break;
    case 'sliceScatter':
      at.b = at.a + R;
      at.c = at.b + R;
      at.d = at.c + R;
      at.words = at.d + 2 * R; // source strides, then base strides
      break;
    case 'gather':
    case 'scatterAdd':
      at.b = at.a + 2;
      at.c = at.b + R;
      at.words = at.c + R;
      if (spec.op === 'scatterAdd') {
        at.b = at.a + 1; // idx shape
        at.c = at.b + R; // source strides
        at.d = at.c + R; // index strides
        at.words = at.d + R;
      }
      break;
  }
  return at;
}

const poison = (dtype: DType) => (dtype === 'float32' ? 'f32bits(0x7fc00000u)' : dtype === 'int32' ? 'i32(-2147483647 - 1)' : '0u');
const zero = (dtype: DType) => `${wgslType(dtype)}(0)`;

const BUILTINS: Builtin[] = [
  { kind: 'global_invocation_id', name: 'gid', type: 'vec3<u32>' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

/** Storage bindings: the data input, the index or the slice's source (all but slice), the output; then the params. */
export function indexWGSL(spec: IndexSpec, nsIn?: Namespace): GeneratedKernel {
  const R = spec.rank;
  const L = layout(spec);
  const T = wgslType(spec.dtype);
  const hasIndex = spec.op === 'gather' || spec.op === 'scatterAdd' || spec.op === 'col2imAt';
  const ob = spec.op === 'slice' || spec.op === 'im2col' || spec.op === 'col2im' ? 1 : 2;
  const ns = nsIn ?? standalone(ob + 1);
  const n = (s: string) => ns.prefix + s;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  lines.push(`@group(0) @binding(${ns.storage(0)}) var<storage, read> ${n('in0')}: array<${T}>;`);
  if (hasIndex) lines.push(`@group(0) @binding(${ns.storage(1)}) var<storage, read> ${n('in1')}: array<i32>;`);
  if (spec.op === 'sliceScatter') lines.push(`@group(0) @binding(${ns.storage(1)}) var<storage, read> ${n('in1')}: array<${T}>;`);
  lines.push(`@group(0) @binding(${ns.storage(ob)}) var<storage, read_write> ${n('out0')}: array<${T}>;`);
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  const word = (w: WindowWord) => `${n('P')}(${L.a + WINDOW_WORDS.indexOf(w)}u)`;
  if (spec.op === 'im2col') lines.push(windowLoadWGSL(n('window'), n('in0'), word));
  if (spec.op === 'col2im') lines.push(windowGradWGSL(n('window'), word, (m, q) => `f32(${n('in0')}[(${m}) * ${n('P')}(${L.b}u) + (${q}) * ${n('P')}(${L.b + 1}u)])`));
  // no matrix: the window at (a, b) sends g there to its argmax, the kernel position i * kw + j
  if (spec.op === 'col2imAt') {
    const off = (at: number, p: WindowPlace) => `n * ${n('P')}(${at}u) + c * ${n('P')}(${at + 1}u) + ${p.a} * ${n('P')}(${at + 2}u) + ${p.b} * ${n('P')}(${at + 3}u)`;
    const load = (_m: string, _q: string, p: WindowPlace) =>
      `select(0.0, f32(${n('in0')}[${off(L.b, p)}]), ${n('in1')}[${off(L.c, p)}] == i32(${p.i} * ${word('kw')} + ${p.j}))`;
    lines.push(windowGradWGSL(n('window'), word, load));
  }
  lines.push('');
  lines.push(...entryPoint(ns, String(INDEX_WORKGROUP), BUILTINS));
  lines.push(`  let i = gid.x + gid.y * nwg.x * ${INDEX_WORKGROUP}u;`);
  lines.push(`  if (i >= ${n('P')}(0u)) { return; }`);
  // output coordinates c0..c{R-1}
  lines.push('  var r = i;');
  for (let d = R - 1; d >= 0; d--) lines.push(`  let c${d} = r % ${n('P')}(${L.shape + d}u); r = r / ${n('P')}(${L.shape + d}u);`);
  const dot = (at: number, coord: (d: number) => string) =>
    R === 0 ? '0u' : Array.from({ length: R }, (_, d) => `${coord(d)} * ${n('P')}(${at + d}u)`).join(' + ');
  const c = (d: number) => `c${d}`;
  switch (spec.op) {
    case 'slice':
      lines.push(`  ${n('out0')}[i] = ${n('in0')}[${n('P')}(${L.a}u) + ${dot(L.b, c)}];`);
      break;
    case 'im2col':
      lines.push(`  ${n('out0')}[i] = ${T}(${n('window')}(c0, c1, 0u));`);
      break;
    case 'col2im':
    case 'col2imAt':
      lines.push(`  ${n('out0')}[i] = ${T}(${n('window')}(c0, c1, c2, c3));`);
      break;
    case 'sliceScatter': {
      lines.push('  var ok = true;');
      for (let d = 0; d < R; d++) {
        lines.push(`  let t${d} = i32(c${d}) - i32(${n('P')}(${L.a + d}u));`);
        lines.push(`  let q${d} = u32(max(t${d}, 0)) / ${n('P')}(${L.b + d}u);`);
        lines.push(`  ok = ok && t${d} >= 0 && u32(t${d}) % ${n('P')}(${L.b + d}u) == 0u && q${d} < ${n('P')}(${L.c + d}u);`);
      }
      lines.push(`  if (ok) { ${n('out0')}[i] = ${n('in1')}[${dot(L.d, (d) => `q${d}`)}]; } else { ${n('out0')}[i] = ${n('in0')}[${dot(L.d + R, c)}]; }`);
      break;
    }
    case 'gather': {
      const dim = `${n('P')}(${L.a}u)`;
      lines.push(`  let k = ${n('in1')}[${dot(L.c, c)}];`);
      lines.push(`  if (k < 0 || u32(k) >= ${n('P')}(${L.a + 1}u)) { ${n('out0')}[i] = ${poison(spec.dtype)}; return; }`);
      const at = (d: number) => `select(c${d}, u32(k), ${dim} == ${d}u)`;
      lines.push(`  ${n('out0')}[i] = ${n('in0')}[${dot(L.b, at)}];`);
      break;
    }
    case 'scatterAdd': {
      const dim = `${n('P')}(${L.a}u)`;
      // outside the index's extent (off dim) nothing lands
      for (let d = 0; d < R; d++) lines.push(`  if (${dim} != ${d}u && c${d} >= ${n('P')}(${L.b + d}u)) { ${n('out0')}[i] = ${zero(spec.dtype)}; return; }`);
      lines.push('  var acc = 0.0;');
      lines.push('  var want = 0u;');
      lines.push('  var count = 0u;');
      for (let d = 0; d < R; d++) lines.push(`  if (${dim} == ${d}u) { want = c${d}; count = ${n('P')}(${L.b + d}u); }`);
      lines.push('  for (var k = 0u; k < count; k = k + 1u) {');
      const at = (d: number) => `select(c${d}, k, ${dim} == ${d}u)`;
      lines.push(`    let j = ${n('in1')}[${dot(L.d, at)}];`);
      lines.push(`    if (j >= 0 && u32(j) == want) { acc = acc + f32(${n('in0')}[${dot(L.c, at)}]); }`);
      lines.push('  }');
      lines.push(`  ${n('out0')}[i] = ${T}(acc);`);
      break;
    }
  }
  lines.push('}');
  const storage: ('read' | 'read_write')[] = [...Array.from({ length: ob }, () => 'read' as const), 'read_write'];
  return {
    code: lines.join('\n'),
    layout: { storage, uniforms: 1, workgroupSize: [INDEX_WORKGROUP, 1, 1], workgroupBytes: 0, builtins: BUILTINS },
    paramWords: L.words,
  };
}

export interface IndexOperands {
  /** output shape */
  out: readonly number[];
  attrs: Readonly<Record<string, unknown>>;
  /** each input's shape and the strides it is read with (the data, then the index or the slice's source) */
  inputs: { shape: readonly number[]; strides: readonly number[] }[];
}

export function indexParams(spec: IndexSpec, o: IndexOperands): Uint32Array {
  const L = layout(spec);
  const w = new Uint32Array(paramWords(L.words) * 4);
  const R = spec.rank;
  w[0] = o.out.reduce((p, d) => p * d, 1);
  o.out.forEach((d, k) => (w[L.shape + k] = d));
  const put = (at: number, vs: readonly number[]) => vs.forEach((v, k) => (w[at + k] = v));
  const a = o.attrs;
  const [x, y] = o.inputs;
  switch (spec.op) {
    case 'slice': {
      const starts = a.starts as number[];
      const steps = a.steps as number[];
      w[L.a] = starts.reduce((p, s, d) => p + s * x.strides[d], 0);
      put(L.b, steps.map((s, d) => s * x.strides[d]));
      break;
    }
    case 'sliceScatter':
      put(L.a, a.starts as number[]);
      put(L.b, a.steps as number[]);
      put(L.c, y.shape);
      put(L.d, y.strides);
      put(L.d + R, x.strides);
      break;
    case 'im2col': {
      const vals = windowWordValues(windowMap(a as never, x.shape, x.strides));
      put(L.a, WINDOW_WORDS.map((k) => vals[k]));
      break;
    }
    case 'col2im': {
      const vals = windowWordValues(windowMap(a as never, o.out, o.out.map(() => 0)));
      put(L.a, WINDOW_WORDS.map((k) => vals[k]));
      put(L.b, x.strides);
      break;
    }
    case 'col2imAt': {
      const vals = windowWordValues(windowMap(a as never, o.out, o.out.map(() => 0)));
      put(L.a, WINDOW_WORDS.map((k) => vals[k]));
      put(L.b, x.strides);
      put(L.c, y.strides);
      break;
    }
    case 'gather':
      w[L.a] = a.dim as number;
      w[L.a + 1] = x.shape[a.dim as number];
      put(L.b, x.strides);
      put(L.c, y.strides);
      break;
    case 'scatterAdd':
      w[L.a] = a.dim as number;
      put(L.b, x.shape);
      put(L.c, x.strides);
      put(L.d, y.strides);
      break;
  }
  return w;
}

/** The spec and params of an index kernel of the kernel IR. */
export const indexSpecOf = (b: IndexBody): IndexSpec => ({ op: b.op, rank: b.shape.length, dtype: b.dtype });
export const indexBodyParams = (b: IndexBody) => indexParams(indexSpecOf(b), { out: b.shape, attrs: b.attrs, inputs: b.inputs });
