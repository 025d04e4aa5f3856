/**
 * Elementwise kernels: any DAG of registry formulas over inputs read directly, through
 * strides (broadcasts, permutes, expands) or in place, writing one or more outputs.
 * Sizes and strides are uniforms, so one pipeline serves every shape of a given rank.
 *
 * Params (u32 words): n, out shape[rank], strides[rank] per strided input, scalar bits.
 */
import { INT_FORMULA_OPS, WGSL_PRELUDE, wgslIntLang, wgslLang } from '../ir/scalar-lang.ts';
import { renderNodes } from './expr.ts';
import { PARAMS_DECL, paramWords, putScalarBits, storeAs, wgslType, type ElementwiseSpec, type Ref } from './kernel-spec.ts';

export const EW_WORKGROUP = 64;

export interface GeneratedKernel {
  code: string;
  /** storage bindings in order: inputs that are not aliases, then outputs */
  paramWords: number;
}

function layout(spec: ElementwiseSpec) {
  let w = 1 + spec.rank;
  const strideAt: number[] = [];
  spec.inputs.forEach((inp, k) => {
    strideAt[k] = w;
    if (inp.access === 'strided') w += spec.rank;
  });
  const scalarAt = w;
  w += spec.scalars;
  return { strideAt, scalarAt, words: w };
}

/**
 * Whether every value of the kernel is an integer: int32/bool inputs and outputs, integer
 * ops with integer attributes. Such a kernel computes in i32 (exact, wrapping like PyTorch's
 * int32) instead of f32, and takes its scalars as i32 words.
 */
export function isIntKernel(spec: ElementwiseSpec): boolean {
  if (!spec.inputs.length && !spec.nodes.length) return false;
  if (spec.inputs.some((x) => x.dtype === 'float32') || spec.outputs.some((o) => o.dtype === 'float32')) return false;
  return spec.nodes.every(
    (n) =>
      // an int32 result of int32 inputs means its number operands were integers (type promotion);
      // a bool result (a comparison) says nothing about them, so it may take no number
      n.dtype !== undefined &&
      n.dtype !== 'float32' &&
      INT_FORMULA_OPS.has(n.op) &&
      !(n.dtype === 'bool' && !spec.integerScalars && n.args.some((a) => a.kind === 'scalar')) &&
      Object.entries(n.attrs).every(([k, v]) => k === 'shape' || typeof v !== 'number' || Number.isInteger(v)),
  );
}

export function elementwiseWGSL(spec: ElementwiseSpec): GeneratedKernel {
  const { rank } = spec;
  const int = isIntKernel(spec);
  const L = layout(spec);
  const lines: string[] = [WGSL_PRELUDE];
  let binding = 0;
  spec.inputs.forEach((inp, k) => {
    if (inp.access !== 'alias') lines.push(`@group(0) @binding(${binding++}) var<storage, read> in${k}: array<${wgslType(inp.dtype)}>;`);
  });
  spec.outputs.forEach((o, j) => lines.push(`@group(0) @binding(${binding++}) var<storage, read_write> out${j}: array<${wgslType(o.dtype)}>;`));
  lines.push(PARAMS_DECL.replace('PARAM_VEC4S', String(paramWords(L.words))));
  lines.push(`@group(0) @binding(${binding}) var<uniform> p: Params;`);
  lines.push('fn P(i: u32) -> u32 { return p.v[i / 4u][i % 4u]; }');
  lines.push('');
  lines.push(`@compute @workgroup_size(${EW_WORKGROUP})`);
  lines.push('fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {');
  lines.push(`  let i = gid.x + gid.y * nwg.x * ${EW_WORKGROUP}u;`);
  lines.push('  if (i >= P(0u)) { return; }');
  const strided = spec.inputs.some((x) => x.access === 'strided');
  if (strided && rank > 0) {
    lines.push('  var r = i;');
    for (let d = rank - 1; d >= 1; d--) lines.push(`  let c${d} = r % P(${1 + d}u); r = r / P(${1 + d}u);`);
    lines.push('  let c0 = r;');
  }
  const inputName = (k: number) => `x${k}`;
  const sourceOf: string[] = [];
  spec.inputs.forEach((inp, k) => {
    let idx = 'i';
    if (inp.access === 'strided') {
      idx = rank === 0 ? '0u' : Array.from({ length: rank }, (_, d) => `c${d} * P(${L.strideAt[k] + d}u)`).join(' + ');
    }
    const src = inp.access === 'alias' ? `out${inp.aliasOf ?? 0}[i]` : `in${k}[${idx}]`;
    sourceOf[k] = src;
    lines.push(`  let ${inputName(k)} = ${int ? 'i32' : 'f32'}(${src});`);
  });
  for (let s = 0; s < spec.scalars; s++) lines.push(`  let s${s} = bitcast<${int ? 'i32' : 'f32'}>(P(${L.scalarAt + s}u));`);
  const names = { input: inputName, scalar: (s: number) => `s${s}`, prefix: 'v' };
  lines.push(...renderNodes(spec.nodes, names, '  ', int ? wgslIntLang : wgslLang));
  spec.outputs.forEach((o, j) => {
    const v = o.ref.kind === 'node' ? `v${o.ref.index}` : o.ref.kind === 'input' ? inputName(o.ref.index) : `s${(o.ref as { index: number }).index}`;
    const k = copiedInput(spec, o.ref);
    const exact = k !== null && o.dtype !== 'float32' && spec.inputs[k].dtype === o.dtype;
    const store = int ? (o.dtype === 'int32' ? v : `u32(${v} != 0i)`) : storeAs(o.dtype, v);
    lines.push(`  out${j}[i] = ${exact ? sourceOf[k] : store};`);
  });
  lines.push('}');
  return { code: lines.join('\n'), paramWords: L.words };
}

/**
 * The input an output merely copies (movement ops, clone, copy_), if any. Such an int32
 * output is stored as read: the f32 the kernel computes in holds integers exactly only
 * up to 2^24.
 */
function copiedInput(spec: ElementwiseSpec, ref: Ref): number | null {
  let r = ref;
  while (r.kind === 'node' && spec.nodes[r.index].op === 'copy') r = spec.nodes[r.index].args[0];
  return r.kind === 'input' ? r.index : null;
}

/** The params for one dispatch of `spec`. strides[k] is used for strided inputs only. */
export function elementwiseParams(spec: ElementwiseSpec, outShape: readonly number[], strides: (readonly number[] | null)[], scalars: readonly number[]): Uint32Array {
  const L = layout(spec);
  const words = new Uint32Array(paramWords(L.words) * 4);
  words[0] = outShape.reduce((p, d) => p * d, 1);
  outShape.forEach((d, i) => (words[1 + i] = d));
  spec.inputs.forEach((inp, k) => {
    if (inp.access === 'strided') strides[k]!.forEach((s, d) => (words[L.strideAt[k] + d] = s));
  });
  if (isIntKernel(spec)) scalars.forEach((v, s) => (words[L.scalarAt + s] = v)); // i32 words (two's complement)
  else putScalarBits(words, L.scalarAt, scalars);
  return words;
}
