/**
 * Reductions with `vec` 4 (passes/vector-loads.ts: a sum-like fold whose innermost kept dim is
 * contiguous, as a bias gradient's column sum [N, C] -> [C]): each invocation owns four
 * consecutive outputs and walks the reduced elements alone, reading the four columns of each
 * reduced row as one vec4, so neighbouring invocations read neighbouring memory, without
 * workgroup memory or barriers. The fold keeps the scalar kernel's blocks of 64 (reduce.ts).
 *
 * Params: the scalar kernel's (reduceParams).
 */
import { foldExpr, REDUCTIONS } from '../ir/reductions.ts';
import { WGSL_PRELUDE, wgslF32 } from '../ir/scalar-lang.ts';
import type { ReduceBody, Ref } from '../passes/kernel-ir.ts';
import { groupRead, VEC } from '../passes/vector-loads.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { renderNodes } from './expr.ts';
import { paramsDecl, paramWords, storeAs, wgslType } from './kernel-spec.ts';
import { LANE_WORKGROUP } from './lanes.ts';
import { entryPoint, standalone, type Builtin, type Namespace } from './namespace.ts';
import { reduceLayout } from './reduce.ts';

const COMP = ['x', 'y', 'z', 'w'];

const BUILTINS: Builtin[] = [
  { kind: 'workgroup_id', name: 'wid', type: 'vec3<u32>' },
  { kind: 'local_invocation_index', name: 'lid', type: 'u32' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

/** 64 invocations of four outputs each per workgroup */
export const reduceVec4Workgroups = (spec: ReduceBody) => Math.ceil(spec.kept.reduce((p, d) => p * d, 1) / (VEC * LANE_WORKGROUP));

export function reduceVec4WGSL(spec: ReduceBody, nsIn?: Namespace): GeneratedKernel {
  const L = reduceLayout(spec);
  const keptRank = spec.kept.length;
  const redRank = spec.reduced.length;
  const nIn = spec.inputs.length;
  const ns = nsIn ?? standalone(nIn + spec.outputs.length);
  const n = (s: string) => ns.prefix + s;
  const P = (i: number) => `${n('P')}(${i}u)`;
  const fold = REDUCTIONS[spec.combine];
  if (fold.kind !== 'fold') throw new Error(`internal compiler error: a vec4 reduction combines by ${spec.combine}, not a fold`);
  const read = spec.inputs.map((x) => groupRead(x.strides!, keptRank - 1)!);
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  spec.inputs.forEach((x, k) => {
    const el = wgslType(x.dtype);
    lines.push(`@group(0) @binding(${ns.storage(k)}) var<storage, read> ${n(`in${k}`)}: array<${read[k] === 'vec4' ? `vec4<${el}>` : el}>;`);
  });
  spec.outputs.forEach((o, j) => lines.push(`@group(0) @binding(${ns.storage(nIn + j)}) var<storage, read_write> ${n(`out${j}`)}: array<vec4<${wgslType(o.dtype)}>>;`));
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  lines.push('');
  lines.push(...entryPoint(ns, String(LANE_WORKGROUP), BUILTINS));
  lines.push(`  let g = (wid.x + wid.y * nwg.x) * ${LANE_WORKGROUP}u + lid;`);
  lines.push(`  if (g >= ${P(0)} / ${VEC}u) { return; }`);
  // the first of the group's outputs: its kept index gives every input's base
  lines.push(`  var ko = g * ${VEC}u;`);
  for (let d = keptRank - 1; d >= 0; d--) lines.push(`  let k${d} = ko % ${P(L.keptAt + d)}; ko = ko / ${P(L.keptAt + d)};`);
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: keptRank }, (_, d) => `k${d} * ${P(L.stridesAt + k * L.per + d)}`);
    lines.push(`  let base${k} = ${terms.join(' + ')};`);
  });
  for (let s = 0; s < spec.scalars; s++) lines.push(`  let s${s} = bitcast<f32>(${P(L.scalarAt + s)});`);
  const id = `vec4<f32>(${wgslF32(fold.identity)})`;
  lines.push(`  var acc = ${id};`, `  var part = ${id};`, '  var cnt = 0u;');
  lines.push(`  for (var r = 0u; r < ${P(1)}; r = r + 1u) {`);
  lines.push('    var rr = r;');
  for (let d = redRank - 1; d > 0; d--) lines.push(`    let q${d} = rr % ${P(L.redAt + d)}; rr = rr / ${P(L.redAt + d)};`);
  if (redRank) lines.push('    let q0 = rr;');
  const comp = (k: number, c: number) => `x${k}_${c}`;
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: redRank }, (_, d) => `q${d} * ${P(L.stridesAt + k * L.per + keptRank + d)}`);
    const idx = `base${k}${terms.length ? ' + ' + terms.join(' + ') : ''}`;
    lines.push(`    let xv${k} = ${n(`in${k}`)}[${read[k] === 'vec4' ? `(${idx}) / ${VEC}u` : idx}];`);
    for (let c = 0; c < VEC; c++) lines.push(`    let ${comp(k, c)} = f32(xv${k}${read[k] === 'vec4' ? `.${COMP[c]}` : ''});`);
  });
  const valueOf = (r: Ref, c: number, prefix: string, acc: string) =>
    r.kind === 'node' ? `${prefix}${c}_${r.index}` : r.kind === 'input' ? comp(r.index, c) : r.kind === 'acc' ? acc : `s${(r as { index: number }).index}`;
  for (let c = 0; c < VEC; c++) lines.push(...renderNodes(spec.prologue, { input: (k) => comp(k, c), scalar: (s) => `s${s}`, prefix: `pv${c}_` }, '    '));
  const v = `vec4<f32>(${Array.from({ length: VEC }, (_, c) => valueOf(spec.value, c, 'pv', '')).join(', ')})`;
  lines.push(`    part = ${foldExpr(fold, 'part', v)};`, '    cnt = cnt + 1u;', `    if (cnt == 64u) { acc = ${foldExpr(fold, 'acc', 'part')}; part = ${id}; cnt = 0u; }`);
  lines.push('  }');
  lines.push(`  acc = ${foldExpr(fold, 'acc', 'part')};`);
  for (let c = 0; c < VEC; c++) {
    lines.push(`  let red_${c} = acc.${COMP[c]};`);
    lines.push(...renderNodes(spec.epilogue, { input: (k) => comp(k, c), scalar: (s) => `s${s}`, acc: `red_${c}`, prefix: `ev${c}_` }, '  '));
  }
  spec.outputs.forEach((o, j) => {
    const parts = Array.from({ length: VEC }, (_, c) => storeAs(o.dtype, valueOf(o.ref, c, 'ev', `red_${c}`)));
    lines.push(`  ${n(`out${j}`)}[g] = vec4<${wgslType(o.dtype)}>(${parts.join(', ')});`);
  });
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: {
      storage: [...spec.inputs.map(() => 'read' as const), ...spec.outputs.map(() => 'read_write' as const)],
      uniforms: 1,
      workgroupSize: [LANE_WORKGROUP, 1, 1],
      workgroupBytes: 0,
      builtins: BUILTINS,
    },
    paramWords: L.words,
  };
}
