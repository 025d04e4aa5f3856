/**
 * Elementwise kernels: any DAG of registry formulas over inputs read directly, through
 * strides (broadcasts, permutes, expands) or in place, writing one or more outputs.
 * Sizes and strides are uniforms, so one pipeline serves every shape of a given rank.
 *
 * Params (u32 words): n, out shape[rank], strides[rank] per strided input, scalar bits.
 */
import { WGSL_PRELUDE, wgslIntLang, wgslLang } from '../ir/scalar-lang.ts';
import { isIntKernel } from '../passes/int-kernels.ts';
import type { Arena, ElementwiseBody, Ref } from '../passes/kernel-ir.ts';
import { renderNodes } from './expr.ts';
import { paramsDecl, paramWords, putScalarBits, storeAs, wgslType } from './kernel-spec.ts';
import { StorageSlots } from './storage-slots.ts';
import { entryPoint, standalone, type Builtin, type Namespace, type WgslLayout } from './namespace.ts';
import { elementwiseVec4WGSL, vec4Workgroups } from './elementwise-vec4.ts';

export const EW_WORKGROUP = 64;

export interface GeneratedKernel {
  code: string;
  layout: WgslLayout;
  paramWords: number;
}

/** the params words: n, the shape, each strided input's strides, the scalars */
export function elementwiseLayout(body: ElementwiseBody) {
  const rank = body.shape.length;
  let w = 1 + rank;
  const strideAt: number[] = [];
  body.inputs.forEach((inp, k) => {
    strideAt[k] = w;
    if (inp.access === 'strided' || inp.access === 'gather') w += rank;
  });
  const scalarAt = w;
  w += body.scalars;
  return { strideAt, scalarAt, words: w };
}

/** What the scalar and the vec4 elementwise renderers both start from: the params layout, the storage slots (inputs that are not aliases, then outputs), the namespace and its names. */
export function elementwiseFrame(body: ElementwiseBody, nsIn: Namespace | undefined, arena: Arena | undefined) {
  const L = elementwiseLayout(body);
  const nIn = body.inputs.filter((x) => x.access !== 'alias').length;
  const slots = new StorageSlots(nIn + body.outputs.length, arena);
  const ns = nsIn ?? standalone(slots.count);
  const n = (s: string) => ns.prefix + s;
  const P = (i: string) => `${n('P')}(${i})`;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  return { L, nIn, slots, ns, n, P, lines };
}

const BUILTINS: Builtin[] = [
  { kind: 'global_invocation_id', name: 'gid', type: 'vec3<u32>' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

/** Storage bindings: inputs that are not aliases, then outputs; then the params uniform. */
export function elementwiseWGSL(body: ElementwiseBody, nsIn?: Namespace, arena?: Arena): GeneratedKernel {
  const rank = body.shape.length;
  const int = isIntKernel(body);
  if (body.vec) return elementwiseVec4WGSL(body, nsIn, arena);
  const { L, nIn, slots, ns, n, P, lines } = elementwiseFrame(body, nsIn, arena);
  // logical slots: the inputs that are not aliases, then the outputs
  const inSlot: number[] = [];
  const access: WgslLayout['storage'] = [];
  const declare = (slot: number, name: string, type: string, acc: 'read' | 'read_write') => {
    const line = slots.declare(ns, slot, name, type, acc);
    if (line) lines.push(line);
    access.push(acc);
  };
  body.inputs.forEach((inp, k) => {
    if (inp.access === 'alias') return;
    inSlot[k] = access.length;
    declare(inSlot[k]!, n(`in${k}`), `array<${wgslType(inp.dtype)}>`, 'read');
  });
  body.outputs.forEach((o, j) => declare(nIn + j, n(`out${j}`), `array<${wgslType(o.dtype)}>`, 'read_write'));
  const outAt = (j: number, idx: string) => slots.at(ns, nIn + j, n(`out${j}`), idx);
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  lines.push('');
  lines.push(...entryPoint(ns, String(EW_WORKGROUP), BUILTINS));
  lines.push(`  let i = gid.x + gid.y * nwg.x * ${EW_WORKGROUP}u;`);
  lines.push(`  if (i >= ${P('0u')}) { return; }`);
  const strided = body.inputs.some((x) => x.access === 'strided' || x.access === 'gather');
  if (strided && rank > 0) {
    lines.push('  var r = i;');
    for (let d = rank - 1; d >= 1; d--) lines.push(`  let c${d} = r % ${P(`${1 + d}u`)}; r = r / ${P(`${1 + d}u`)};`);
    lines.push('  let c0 = r;');
  }
  const inputName = (k: number) => `x${k}`;
  const sourceOf: string[] = [];
  const stridedIdx = (k: number) => (rank === 0 ? '0u' : Array.from({ length: rank }, (_, d) => `c${d} * ${P(`${L.strideAt[k] + d}u`)}`).join(' + '));
  body.inputs.forEach((inp, k) => {
    if (inp.access === 'gather') return;
    const idx = inp.access === 'strided' ? stridedIdx(k) : 'i';
    const src = inp.access === 'alias' ? outAt(inp.aliasOf ?? 0, 'i') : slots.at(ns, inSlot[k]!, n(`in${k}`), idx);
    sourceOf[k] = src;
    lines.push(`  let ${inputName(k)} = ${int ? 'i32' : 'f32'}(${src});`);
  });
  // gathered elements, after the indices they read: NaN for an index outside the gathered dim
  body.inputs.forEach((inp, k) => {
    if (inp.access !== 'gather') return;
    const { index, dimStride, size } = inp.gather!;
    lines.push(`  let g${k} = i32(${sourceOf[index]});`);
    lines.push(`  var ${inputName(k)} = f32bits(0x7fc00000u);`);
    lines.push(`  if (g${k} >= 0 && g${k} < ${size}) { ${inputName(k)} = f32(${n(`in${k}`)}[${stridedIdx(k)} + u32(g${k}) * ${dimStride}u]); }`);
    sourceOf[k] = inputName(k);
  });
  for (let s = 0; s < body.scalars; s++) lines.push(`  let s${s} = bitcast<${int ? 'i32' : 'f32'}>(${P(`${L.scalarAt + s}u`)});`);
  const names = { input: inputName, scalar: (s: number) => `s${s}`, prefix: 'v' };
  lines.push(...renderNodes(body.nodes, names, '  ', int ? wgslIntLang : wgslLang));
  body.outputs.forEach((o, j) => {
    const v = o.ref.kind === 'node' ? `v${o.ref.index}` : o.ref.kind === 'input' ? inputName(o.ref.index) : `s${(o.ref as { index: number }).index}`;
    const k = copiedInput(body, o.ref);
    const exact = k !== null && o.dtype !== 'float32' && body.inputs[k].dtype === o.dtype;
    const store = int ? (o.dtype === 'int32' ? v : `u32(${v} != 0i)`) : storeAs(o.dtype, v);
    lines.push(`  ${outAt(j, 'i')} = ${exact ? sourceOf[k] : store};`);
  });
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: { storage: slots.access(access), uniforms: 1, workgroupSize: [EW_WORKGROUP, 1, 1], workgroupBytes: 0, builtins: BUILTINS },
    paramWords: L.words,
  };
}

/** Workgroups of an elementwise body (the executor folds them into a 2-D grid). */
export const elementwiseWorkgroups = (body: ElementwiseBody) =>
  body.vec ? vec4Workgroups(body) : Math.ceil(body.shape.reduce((p, d) => p * d, 1) / EW_WORKGROUP);

/**
 * The input an output merely copies (movement ops, clone, copy_), if any. Such an int32
 * output is stored as read: the f32 the kernel computes in holds integers exactly only
 * up to 2^24.
 */
function copiedInput(body: ElementwiseBody, ref: Ref): number | null {
  let r = ref;
  while (r.kind === 'node' && body.nodes[r.index].op === 'copy') r = body.nodes[r.index].args[0];
  return r.kind === 'input' ? r.index : null;
}

/** The params for one dispatch of `body`: its shape, the strides of its strided inputs, the scalars' values. */
export function elementwiseParams(body: ElementwiseBody, scalars: readonly number[]): Uint32Array {
  const L = elementwiseLayout(body);
  const words = new Uint32Array(paramWords(L.words) * 4);
  words[0] = body.shape.reduce((p, d) => p * d, 1);
  body.shape.forEach((d, i) => (words[1 + i] = d));
  body.inputs.forEach((inp, k) => {
    if (inp.access === 'strided' || inp.access === 'gather') inp.strides!.forEach((s, d) => (words[L.strideAt[k] + d] = s));
  });
  if (isIntKernel(body)) scalars.forEach((v, s) => (words[L.scalarAt + s] = v)); // i32 words (two's complement)
  else putScalarBits(words, L.scalarAt, scalars);
  return words;
}
