/**
 * Reductions (every one src/ir/reductions.ts declares, rendered from its combine and
 * identity) with fused elementwise producers (prologue) and
 * consumers (epilogue). The body's `lanes` (lanes.ts) invocations per output element stride
 * over its reduced elements, then combine in workgroup memory (64, the default: one output per
 * workgroup; one lane: 64 outputs per workgroup, each a serial loop without barriers).
 *
 * Params (u32 words): nOut, R (reduced count), kept shape[keptRank], reduced shape[redRank],
 * per input strides[keptRank + redRank], scalar bits.
 */
import { foldExpr, preferExpr, REDUCTIONS } from '../ir/reductions.ts';
import { WGSL_PRELUDE, wgslF32, wgslIntLang, wgslLang } from '../ir/scalar-lang.ts';
import { isIntReduce } from '../passes/int-kernels.ts';
import type { Arena, ReduceBody } from '../passes/kernel-ir.ts';
import { renderNodes } from './expr.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { paramsDecl, paramWords, putScalarBits, storeAs, wgslType } from './kernel-spec.ts';
import { StorageSlots } from './storage-slots.ts';
import { checkLanes, lane, laneHeader, laneRoot, laneTree, laneWorkgroups, LANE_WORKGROUP, writesRow } from './lanes.ts';
import { entryPoint, standalone, type Builtin, type Namespace } from './namespace.ts';
import { reduceVec4Workgroups, reduceVec4WGSL } from './reduce-vec4.ts';

export const REDUCE_WORKGROUP = LANE_WORKGROUP;

/** invocations per output: the body's choice, else a whole workgroup */
export const reduceLanesOf = (spec: ReduceBody) => checkLanes(spec.lanes ?? REDUCE_WORKGROUP, 'a reduction');

/** the params words: nOut, R, the kept and reduced sizes, every input's strides, the scalars */
export function reduceLayout(spec: ReduceBody) {
  const keptAt = 2;
  const redAt = keptAt + spec.kept.length;
  const stridesAt = redAt + spec.reduced.length;
  const per = spec.kept.length + spec.reduced.length;
  const scalarAt = stridesAt + per * spec.inputs.length;
  return { keptAt, redAt, stridesAt, per, scalarAt, words: scalarAt + spec.scalars };
}

const BUILTINS: Builtin[] = [
  { kind: 'workgroup_id', name: 'wid', type: 'vec3<u32>' },
  { kind: 'local_invocation_index', name: 'lid', type: 'u32' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

/** Storage bindings: the inputs, then the outputs; then the params uniform. */
export function reduceWGSL(spec: ReduceBody, nsIn?: Namespace, arena?: Arena): GeneratedKernel {
  if (spec.vec && !arena) return reduceVec4WGSL(spec, nsIn);
  const L = reduceLayout(spec);
  const WG = REDUCE_WORKGROUP;
  const lanes = reduceLanesOf(spec);
  const keptRank = spec.kept.length;
  const redRank = spec.reduced.length;
  const nIn = spec.inputs.length;
  const slots = new StorageSlots(nIn + spec.outputs.length, arena);
  const ns = nsIn ?? standalone(slots.count);
  const n = (s: string) => ns.prefix + s;
  const P = (i: string) => `${n('P')}(${i})`;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  const declare = (slot: number, name: string, type: string, acc: 'read' | 'read_write') => {
    const line = slots.declare(ns, slot, name, type, acc);
    if (line) lines.push(line);
  };
  spec.inputs.forEach((inp, k) => declare(k, n(`in${k}`), `array<${wgslType(inp.dtype)}>`, 'read'));
  spec.outputs.forEach((r, j) => declare(nIn + j, n(`out${j}`), `array<${wgslType(r.dtype)}>`, 'read_write'));
  const outAt = (j: number, idx: string) => slots.at(ns, nIn + j, n(`out${j}`), idx);
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  const red = REDUCTIONS[spec.combine];
  const fold = red.kind === 'fold' ? red : null;
  const isArg = red.kind === 'select' && red.index;
  // integers combine in i32: exact, a sum or product wrapping as PyTorch's int32 does
  const int = isIntReduce(spec);
  const T = int ? 'i32' : 'f32';
  const lang = int ? wgslIntLang : undefined;
  const shv = n('shv');
  const shi = n('shi');
  if (lanes > 1) lines.push(`var<workgroup> ${shv}: array<${T}, ${WG}>;`);
  if (isArg && lanes > 1) lines.push(`var<workgroup> ${shi}: array<u32, ${WG}>;`);
  const better = n('better');
  if (red.kind === 'select') {
    lines.push(
      int ? `fn ${better}(v: i32, best: i32) -> bool { return v ${red.prefer} best; }` : `fn ${better}(v: f32, best: f32) -> bool { return ${preferExpr(red, wgslLang, 'v', 'best')} != 0.0; }`,
    );
  }
  lines.push('');
  lines.push(...entryPoint(ns, String(WG), BUILTINS));
  lines.push(...laneHeader(lanes, P('0u')));
  // base offsets from the kept index
  lines.push('  var ko = o;');
  for (let d = keptRank - 1; d >= 0; d--) {
    lines.push(`  let k${d} = ko % ${P(`${L.keptAt + d}u`)}; ko = ko / ${P(`${L.keptAt + d}u`)};`);
  }
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: keptRank }, (_, d) => `k${d} * ${P(`${L.stridesAt + k * L.per + d}u`)}`);
    lines.push(`  let base${k} = ${terms.length ? terms.join(' + ') : '0u'};`);
  });
  for (let s = 0; s < spec.scalars; s++) lines.push(`  let s${s} = bitcast<${T}>(${P(`${L.scalarAt + s}u`)});`);
  const identity = int ? intIdentity(red.identity) : wgslF32(red.identity);
  lines.push(`  var acc: ${T} = ${identity};`);
  if (isArg) lines.push('  var at: u32 = 0u;');
  if (fold) lines.push(`  var part: ${T} = ${identity};`, '  var cnt: u32 = 0u;');
  lines.push(`  for (var r = ${lane(lanes)}; r < ${P('1u')}; r = r + ${lanes}u) {`);
  lines.push('    var rr = r;');
  // (r < R: what is left for the outermost reduced dim is its index, no division)
  for (let d = redRank - 1; d > 0; d--) lines.push(`    let q${d} = rr % ${P(`${L.redAt + d}u`)}; rr = rr / ${P(`${L.redAt + d}u`)};`);
  if (redRank) lines.push('    let q0 = rr;');
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: redRank }, (_, d) => `q${d} * ${P(`${L.stridesAt + k * L.per + keptRank + d}u`)}`);
    lines.push(`    let x${k} = ${T}(${slots.at(ns, k, n(`in${k}`), `base${k}${terms.length ? ' + ' + terms.join(' + ') : ''}`)});`);
  });
  const names = { input: (k: number) => `x${k}`, scalar: (s: number) => `s${s}`, prefix: 'pv' };
  lines.push(...renderNodes(spec.prologue, names, '    ', lang));
  const value = spec.value.kind === 'node' ? `pv${spec.value.index}` : spec.value.kind === 'input' ? `x${spec.value.index}` : `s${(spec.value as { index: number }).index}`;
  // a fold combines blocks of 64 into acc: one running f32 sum of a million values drifts (4M x 0.1 gave 0.10006)
  if (fold) {
    lines.push(`    part = ${foldExpr(fold, 'part', value)};`, '    cnt = cnt + 1u;', `    if (cnt == 64u) { acc = ${foldExpr(fold, 'acc', 'part')}; part = ${identity}; cnt = 0u; }`);
  } else {
    lines.push(`    let val = ${value};`);
    lines.push(`    if (${better}(val, acc)) { acc = val;${isArg ? ' at = r;' : ''} }`);
  }
  lines.push('  }');
  if (fold) lines.push(`  acc = ${foldExpr(fold, 'acc', 'part')};`);
  let total = 'acc';
  let index = 'at';
  if (lanes > 1) {
    lines.push(`  ${shv}[lid] = acc;`);
    if (isArg) lines.push(`  ${shi}[lid] = at;`);
    lines.push(
      ...laneTree(lanes, (to, from) => {
        if (fold) return `${shv}[${to}] = ${foldExpr(fold, `${shv}[${to}]`, `${shv}[${from}]`)};`;
        // ties keep the smaller index, as PyTorch's argmax and argmin do
        const same = int ? `${shv}[${from}] == ${shv}[${to}]` : `(${shv}[${from}] == ${shv}[${to}] || (wgt_isnan(${shv}[${from}]) && wgt_isnan(${shv}[${to}])))`;
        const tie = isArg ? ` || (${same} && ${shi}[${from}] < ${shi}[${to}])` : '';
        return `if (${better}(${shv}[${from}], ${shv}[${to}])${tie}) { ${shv}[${to}] = ${shv}[${from}];${isArg ? ` ${shi}[${to}] = ${shi}[${from}];` : ''} }`;
      }),
    );
    total = `${shv}[${laneRoot(lanes)}]`;
    index = `${shi}[${laneRoot(lanes)}]`;
  }
  lines.push(writesRow(lanes) ? `  if (${writesRow(lanes)}) {` : '  {');
  if (isArg) lines.push(`    ${outAt(0, 'o')} = i32(${index});`);
  else {
    lines.push(`    let red = ${total};`);
    const enames = { input: (k: number) => `x${k}`, scalar: (s: number) => `s${s}`, acc: 'red', prefix: 'ev' };
    lines.push(...renderNodes(spec.epilogue, enames, '    ', lang));
    spec.outputs.forEach((r, j) => {
      const res = r.ref.kind === 'node' ? `ev${r.ref.index}` : 'red';
      lines.push(`    ${outAt(j, 'o')} = ${int ? res : storeAs(r.dtype, res)};`);
    });
  }
  lines.push('  }');
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: {
      storage: slots.access([...spec.inputs.map(() => 'read' as const), ...spec.outputs.map(() => 'read_write' as const)]),
      uniforms: 1,
      workgroupSize: [WG, 1, 1],
      workgroupBytes: lanes > 1 ? (isArg ? 8 : 4) * WG : 0,
      builtins: BUILTINS,
    },
    paramWords: L.words,
  };
}

/** A reduction's identity as an i32 (the infinities of max and min: the ends of the i32 range). */
function intIdentity(v: number): string {
  if (v === -Infinity) return 'i32(-2147483647 - 1)';
  if (v === Infinity) return '2147483647i';
  return `${v}i`;
}

/** 64 / lanes output elements per workgroup */
export const reduceWorkgroups = (spec: ReduceBody) =>
  spec.vec ? reduceVec4Workgroups(spec) : laneWorkgroups(spec.kept.reduce((p, d) => p * d, 1), reduceLanesOf(spec));

/** The params for one dispatch: the kept and reduced sizes, every input's strides, the scalars' values. */
export function reduceParams(spec: ReduceBody, scalars: readonly number[]): Uint32Array {
  const L = reduceLayout(spec);
  const words = new Uint32Array(paramWords(L.words) * 4);
  words[0] = spec.kept.reduce((p, d) => p * d, 1);
  words[1] = spec.reduced.reduce((p, d) => p * d, 1);
  spec.kept.forEach((d, i) => (words[L.keptAt + i] = d));
  spec.reduced.forEach((d, i) => (words[L.redAt + i] = d));
  spec.inputs.forEach((inp, k) => inp.strides!.forEach((v, d) => (words[L.stridesAt + k * L.per + d] = v)));
  if (isIntReduce(spec)) scalars.forEach((v, s) => (words[L.scalarAt + s] = v)); // i32 words (two's complement)
  else putScalarBits(words, L.scalarAt, scalars);
  return words;
}
