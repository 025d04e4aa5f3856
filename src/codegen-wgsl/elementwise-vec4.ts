/**
 * Elementwise kernels with `vec` 4 (passes/vector-loads.ts): each invocation takes groups of
 * four consecutive elements, `VEC_STEPS` groups 64 apart (consecutive invocations, consecutive
 * groups: coalesced on a GPU), loading each input's four as one vec4 (or, broadcast along the
 * innermost dim, one value for all four) and storing each output's as one. The body runs once
 * per element of the group, on scalars, exactly as the scalar kernel's (elementwise.ts) does.
 *
 * With an arena (passes/binding-arena.ts: member offsets are multiples of 4 elements) the arena
 * is an array of vec4 too: a member at element offset o has its group g at o / 4 + g, and an
 * element e read as one value for the group at component (o + e) % 4 of o / 4 + e / 4.
 *
 * Params: the scalar kernel's (elementwiseParams).
 */
import type { Arena, ElementwiseBody, Ref } from '../passes/kernel-ir.ts';
import { groupRead, VEC } from '../passes/vector-loads.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { elementwiseFrame, EW_WORKGROUP } from './elementwise.ts';
import { renderNodes } from './expr.ts';
import { paramsDecl, paramWords, storeAs, wgslType } from './kernel-spec.ts';
import { entryPoint, type Builtin, type Namespace, type WgslLayout } from './namespace.ts';

/** groups of four per invocation (measured on lavapipe: 2 beat 1 by about a quarter, 4 gained little more) */
export const VEC_STEPS = 2;
const COMP = ['x', 'y', 'z', 'w'];

const BUILTINS: Builtin[] = [
  { kind: 'workgroup_id', name: 'wid', type: 'vec3<u32>' },
  { kind: 'local_invocation_index', name: 'lid', type: 'u32' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

export const vec4Workgroups = (body: ElementwiseBody) => Math.ceil(body.shape.reduce((p, d) => p * d, 1) / (VEC * VEC_STEPS * EW_WORKGROUP));

/** whether a kernel with this arena can read its members as vec4 (every offset a whole group) */
export const arenaVectorizes = (arena: Arena) => arena.offsets.every((o) => o % VEC === 0);

export function elementwiseVec4WGSL(body: ElementwiseBody, nsIn?: Namespace, arena?: Arena): GeneratedKernel {
  if (arena && !arenaVectorizes(arena)) throw new Error('internal compiler error: a vec4 kernel with an arena member off a group of four');
  const rank = body.shape.length;
  const last = rank - 1;
  const { L, nIn, slots, ns, n, P, lines } = elementwiseFrame(body, nsIn, arena);
  const access: WgslLayout['storage'] = [];
  const inSlot: number[] = [];
  const read = body.inputs.map((x) => (x.access === 'strided' ? groupRead(x.strides!, last)! : 'vec4'));
  const declare = (slot: number, name: string, type: string, acc: 'read' | 'read_write') => {
    const line = slots.declare(ns, slot, name, type, acc, 'array<vec4<f32>>');
    if (line) lines.push(line);
    access.push(acc);
  };
  body.inputs.forEach((x, k) => {
    if (x.access === 'alias') return;
    inSlot[k] = access.length;
    const el = wgslType(x.dtype);
    declare(inSlot[k]!, n(`in${k}`), `array<${read[k] === 'vec4' ? `vec4<${el}>` : el}>`, 'read');
  });
  body.outputs.forEach((o, j) => declare(nIn + j, n(`out${j}`), `array<vec4<${wgslType(o.dtype)}>>`, 'read_write'));
  const arenaName = slots.arenaName(ns);
  /** group `g` (a u32 expression) of a slot's buffer */
  const groupAt = (slot: number, name: string, g: string) => {
    const off = slots.offset(slot);
    return off === undefined ? `${name}[${g}]` : `${arenaName}[${off / VEC}u + ${g}]`;
  };
  /** element `e` of a slot's buffer, read as one value */
  const elementAt = (slot: number, name: string, e: string) => {
    const off = slots.offset(slot);
    return off === undefined ? `${name}[${e}]` : `${arenaName}[${off / VEC}u + (${e}) / ${VEC}u][(${e}) % ${VEC}u]`;
  };
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  lines.push('');
  lines.push(...entryPoint(ns, String(EW_WORKGROUP), BUILTINS));
  lines.push(`  let first = (wid.x + wid.y * nwg.x) * ${EW_WORKGROUP * VEC_STEPS}u + lid;`);
  lines.push(`  let groups = ${P('0u')} / ${VEC}u;`);
  for (let s = 0; s < body.scalars; s++) lines.push(`  let s${s} = bitcast<f32>(${P(`${L.scalarAt + s}u`)});`);
  lines.push(`  for (var e = 0u; e < ${VEC_STEPS}u; e = e + 1u) {`);
  lines.push(`    let g = first + e * ${EW_WORKGROUP}u;`);
  lines.push('    if (g >= groups) { break; }');
  // the group's first element: its coordinates give every strided input's index
  if (body.inputs.some((x) => x.access === 'strided')) {
    lines.push(`    var r = g * ${VEC}u;`);
    for (let d = last; d >= 1; d--) lines.push(`    let c${d} = r % ${P(`${1 + d}u`)}; r = r / ${P(`${1 + d}u`)};`);
    lines.push('    let c0 = r;');
  }
  const comp = (k: number, c: number) => `x${k}_${c}`;
  body.inputs.forEach((x, k) => {
    let src: string;
    if (x.access === 'alias') src = groupAt(nIn + (x.aliasOf ?? 0), n(`out${x.aliasOf ?? 0}`), 'g');
    else if (x.access === 'direct') src = groupAt(inSlot[k]!, n(`in${k}`), 'g');
    else {
      const idx = Array.from({ length: rank }, (_, d) => `c${d} * ${P(`${L.strideAt[k]! + d}u`)}`).join(' + ');
      src = read[k] === 'vec4' ? groupAt(inSlot[k]!, n(`in${k}`), `(${idx}) / ${VEC}u`) : elementAt(inSlot[k]!, n(`in${k}`), idx);
    }
    lines.push(`    let xv${k} = ${src};`);
    for (let c = 0; c < VEC; c++) lines.push(`    let ${comp(k, c)} = f32(xv${k}${read[k] === 'vec4' ? `.${COMP[c]}` : ''});`);
  });
  const valueOf = (r: Ref, c: number) =>
    r.kind === 'node' ? `v${c}_${r.index}` : r.kind === 'input' ? comp(r.index, c) : `s${(r as { index: number }).index}`;
  for (let c = 0; c < VEC; c++) {
    lines.push(...renderNodes(body.nodes, { input: (k) => comp(k, c), scalar: (s) => `s${s}`, prefix: `v${c}_` }, '    '));
  }
  body.outputs.forEach((o, j) => {
    const parts = Array.from({ length: VEC }, (_, c) => storeAs(o.dtype, valueOf(o.ref, c)));
    lines.push(`    ${groupAt(nIn + j, n(`out${j}`), 'g')} = vec4<${wgslType(o.dtype)}>(${parts.join(', ')});`);
  });
  lines.push('  }');
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: { storage: slots.access(access), uniforms: 1, workgroupSize: [EW_WORKGROUP, 1, 1], workgroupBytes: 0, builtins: BUILTINS },
    paramWords: L.words,
  };
}
