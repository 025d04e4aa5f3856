/**
 * Row kernels (kernel IR `RowBody`) as WGSL. The body's `lanes` (lanes.ts) says how many
 * invocations share a row: 64 (the default), one row per workgroup; fewer, 64 / lanes rows per
 * workgroup. Each reduction step is a pass over the row, a row's lanes striding over its
 * elements, then a tree in workgroup memory over those lanes (none for a single lane); every
 * lane then holds the row's value, and `map` steps compute on it. The last pass computes the
 * element outputs; lane 0 writes the per-row outputs.
 *
 * Params (u32 words): rows, R (elements per row), kept sizes, reduced sizes, per input its
 * strides (kept, then reduced), per element output the same, the scalars' bits.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import { windowLoadWGSL, windowWordValues } from '../ir/window.ts';
import type { ExprNode, Ref, RowBody } from '../passes/kernel-ir.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { renderNodes } from './expr.ts';
import { paramsDecl, paramWords, storeAs, wgslType } from './kernel-spec.ts';
import { checkLanes, lane, laneHeader, laneRoot, laneTree, laneWorkgroups, LANE_WORKGROUP, partial, writesRow } from './lanes.ts';
import { entryPoint, standalone, type Builtin, type Namespace } from './namespace.ts';
import { indexWGSL, rowParamLayout } from './row-params.ts';
import { groupRead } from '../passes/vector-loads.ts';

const COMP = ['x', 'y', 'z', 'w'];

/** the reduce kernels' size, so that row kernels pack with them */
export const ROW_WORKGROUP = LANE_WORKGROUP;

/** invocations per row: the body's choice, else a whole workgroup */
export const rowLanesOf = (b: RowBody) => checkLanes(b.lanes ?? ROW_WORKGROUP, 'a row kernel');


const BUILTINS: Builtin[] = [
  { kind: 'workgroup_id', name: 'wid', type: 'vec3<u32>' },
  { kind: 'local_invocation_index', name: 'lid', type: 'u32' },
  { kind: 'num_workgroups', name: 'nwg', type: 'vec3<u32>' },
];

const inputsRead = (nodes: ExprNode[], extra: Ref[] = []) =>
  [...new Set([...nodes.flatMap((n) => n.args), ...extra].filter((a) => a.kind === 'input').map((a) => (a as { index: number }).index))].sort((a, b) => a - b);

/** Storage bindings: the inputs, then the outputs; then the params uniform. */
export function rowWGSL(b: RowBody, nsIn?: Namespace): GeneratedKernel {
  const L = rowParamLayout(b);
  const WG = ROW_WORKGROUP;
  const lanes = rowLanesOf(b);
  const keptRank = b.kept.length;
  const redRank = b.reduced.length;
  // vec4 (passes/vector-loads.ts): each lane step takes four consecutive elements of the row
  const V = b.vec ?? 1;
  const inner = keptRank + redRank - 1;
  const read = b.inputs.map((t) => (V > 1 ? groupRead(t.strides!, inner) : null));
  const vecOf = (t: string, vec: boolean) => (vec ? `vec4<${t}>` : t);
  const ns = nsIn ?? standalone(b.inputs.length + b.outputs.length);
  const n = (s: string) => ns.prefix + s;
  const P = (i: number) => `${n('P')}(${i}u)`;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  b.inputs.forEach((t, k) => lines.push(`@group(0) @binding(${ns.storage(k)}) var<storage, read> ${n(`in${k}`)}: array<${vecOf(wgslType(t.dtype), read[k] === 'vec4')}>;`));
  b.outputs.forEach((o, j) =>
    lines.push(`@group(0) @binding(${ns.storage(b.inputs.length + j)}) var<storage, read_write> ${n(`out${j}`)}: array<${vecOf(wgslType(o.dtype), V > 1 && o.per === 'element')}>;`),
  );
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  // windowed inputs (rule [window-load]): the index map with its sizes as literals
  b.inputs.forEach((t, k) => {
    if (t.access !== 'window') return;
    const words = windowWordValues(t.window!);
    lines.push(windowLoadWGSL(n(`win${k}`), n(`in${k}`), (w) => `${words[w]}u`, undefined, t.window!.planes));
  });
  const sh = n('sh');
  if (lanes > 1) lines.push(`var<workgroup> ${sh}: array<f32, ${WG}>;`);
  const hasArg = b.steps.some((st) => st.kind === 'reduce' && st.combine === 'argmax');
  const shi = n('shi');
  if (hasArg && lanes > 1) lines.push(`var<workgroup> ${shi}: array<u32, ${WG}>;`);
  // NaN wins (PyTorch propagates it); tested through the bits, as lavapipe compiles `v != v` to false
  const better = n('better');
  if (b.steps.some((s) => s.kind === 'reduce' && s.combine !== 'sum')) {
    lines.push(`fn ${better}(v: f32, best: f32) -> bool { return v > best || (wgt_isnan(v) && !wgt_isnan(best)); }`);
  }
  lines.push('');
  lines.push(...entryPoint(ns, String(WG), BUILTINS));
  lines.push(...laneHeader(lanes, P(0)));
  lines.push('  var ko = o;');
  for (let d = keptRank - 1; d >= 0; d--) lines.push(`  let k${d} = ko % ${P(L.keptAt + d)}; ko = ko / ${P(L.keptAt + d)};`);
  const strideWord = (at: number, k: number, d: number) => P(at + k * L.per + d);
  const baseOf = (at: number, k: number) => {
    const terms = Array.from({ length: keptRank }, (_, d) => `k${d} * ${strideWord(at, k, d)}`);
    return terms.length ? terms.join(' + ') : '0u';
  };
  b.inputs.forEach((_, k) => lines.push(`  let base${k} = ${baseOf(L.inAt, k)};`));
  L.elementOuts.forEach((j, e) => lines.push(`  let obase${j} = ${baseOf(L.outAt, e)};`));
  for (let s = 0; s < b.scalars; s++) lines.push(`  let s${s} = bitcast<f32>(${P(L.scalarAt + s)});`);
  const offset = (at: number, k: number) => {
    const terms = Array.from({ length: redRank }, (_, d) => `q${d} * ${strideWord(at, k, keptRank + d)}`);
    return terms.length ? terms.join(' + ') : '0u';
  };
  const at = (k: number) => (read[k] === 'vec4' ? `${n(`in${k}`)}[(base${k} + ${offset(L.inAt, k)}) / 4u]` : `${n(`in${k}`)}[base${k} + ${offset(L.inAt, k)}]`);
  /**
   * input k's element at (k0.., q0..): a gathered one (rule [gather-load]) from its source at the
   * index read beside it, NaN for an index outside the gathered dim, as the gather kernel reads
   */
  const loadInput = (k: number): string[] => {
    const t = b.inputs[k]!;
    if (V > 1) return [`let xv${k} = ${at(k)};`, ...Array.from({ length: V }, (_, c) => `let x${k}_${c} = f32(xv${k}${read[k] === 'vec4' ? `.${COMP[c]}` : ''});`)];
    // one row per window, its columns the reduced index: the patch matrix's (m, q) is (o, j)
    if (t.access === 'window') return [`let x${k} = ${n(`win${k}`)}(o, j, 0u);`];
    if (t.access !== 'gather') return [`let x${k} = f32(${at(k)});`];
    const { index, dimStride, size } = t.gather!;
    return [
      `let g${k} = i32(${at(index)});`,
      `var x${k} = f32bits(0x7fc00000u);`,
      `if (g${k} >= 0 && g${k} < ${size}) { x${k} = f32(${n(`in${k}`)}[base${k} + ${offset(L.inAt, k)} + u32(g${k}) * ${dimStride}u]); }`,
    ];
  };
  /**
   * the loop over the row's elements, with q0.. (the reduced index) and the loads of `used`; the
   * body once per element, of element c of the group of V (null: no group)
   */
  const rowLoop = (used: number[], body: (c: number | null) => string[], tail: string[] = []) => {
    const first = V > 1 ? `${lane(lanes)} * ${V}u` : lane(lanes);
    const out = [`  for (var j = ${first}; j < ${P(1)}; j = j + ${lanes * V}u) {`, '    var jj = j;'];
    // (j < R: what is left for the outermost reduced dim is its index, no division)
    for (let d = redRank - 1; d > 0; d--) out.push(`    let q${d} = jj % ${P(L.redAt + d)}; jj = jj / ${P(L.redAt + d)};`);
    if (redRank) out.push('    let q0 = jj;');
    out.push(...used.flatMap(loadInput).map((l) => `    ${l}`));
    const each = V > 1 ? Array.from({ length: V }, (_, c) => body(c)).flat() : body(null);
    out.push(...[...each, ...tail].map((l) => `    ${l}`), '  }');
    return out;
  };
  /** input k's element as a node reads it: of element c of the group */
  const xName = (c: number | null) => (k: number) => (c === null ? `x${k}` : `x${k}_${c}`);
  const pre = (prefix: string, c: number | null) => (c === null ? prefix : `${prefix}${c}_`);
  const mapInput = (k: number) => {
    if (b.inputs[k]!.access === 'gather' || b.inputs[k]!.access === 'window') throw new Error('internal compiler error: a row kernel\'s map step reads a gathered or windowed input, which is loaded per element');
    return read[k] === 'vec4' ? `f32(${n(`in${k}`)}[base${k} / 4u][base${k} % 4u])` : `f32(${n(`in${k}`)}[base${k}])`;
  };
  const stat = (i: number) => `r${i}`;
  const index = (r: Extract<Ref, { kind: 'index' }>) => indexWGSL(r, keptRank);
  const valueOf = (r: Ref, prefix: string, c: number | null = null) =>
    r.kind === 'node'
      ? `${pre(prefix, c)}${r.index}`
      : r.kind === 'input'
        ? xName(c)(r.index)
        : r.kind === 'scalar'
          ? `s${r.index}`
          : r.kind === 'stat'
            ? stat(r.index)
            : r.kind === 'index'
              ? index(r)
              : 'acc';

  if (b.steps.some((st) => st.kind === 'reduce')) lines.push('  var acc: f32;', '  var part: f32;', '  var cnt: u32;');
  if (hasArg) lines.push('  var at: u32;');
  b.steps.forEach((st, s) => {
    if (st.kind === 'map') {
      // inputs of a map step are constant along the row: read at the row's first element
      const names = { input: (k: number) => mapInput(k), scalar: (i: number) => `s${i}`, stat, index, prefix: `m${s}_` };
      lines.push(...renderNodes([st.node], names, '  '));
      lines.push(`  let ${stat(s)} = m${s}_0;`);
      return;
    }
    const prefix = `a${s}_`;
    const nodes = (c: number | null) => renderNodes(st.nodes, { input: xName(c), scalar: (i: number) => `s${i}`, stat, index, prefix: pre(prefix, c) }, '');
    if (st.combine === 'sum') {
      // blocks of 64 into acc: one running f32 sum of a long row drifts (the reduce kernels' rule)
      lines.push('  acc = 0.0;', '  part = 0.0;', '  cnt = 0u;');
      const body = (c: number | null) => [...nodes(c), `part = part + ${valueOf(st.value, prefix, c)};`];
      lines.push(...rowLoop(inputsRead(st.nodes, [st.value]), body, [`cnt = cnt + ${V}u;`, 'if (cnt == 64u) { acc = acc + part; part = 0.0; cnt = 0u; }']));
      lines.push('  acc = acc + part;');
    } else {
      const arg = st.combine === 'argmax';
      lines.push('  acc = f32bits(0xff800000u);');
      if (arg) lines.push('  at = 0u;');
      // (a group's elements in order: a tie keeps the first, as the scalar loop does)
      const body = (c: number | null) => [...nodes(c), `let val${c ?? ''} = ${valueOf(st.value, prefix, c)};`, `if (${better}(val${c ?? ''}, acc)) { acc = val${c ?? ''};${arg ? ` at = j${c ? ` + ${c}u` : ''};` : ''} }`];
      lines.push(...rowLoop(inputsRead(st.nodes, [st.value]), body));
    }
    const arg = st.combine === 'argmax';
    // argmax: the index (exact in f32: rows are shorter than 2^24)
    if (lanes === 1) {
      lines.push(`  let ${stat(s)} = ${arg ? 'f32(at)' : 'acc'};`);
      return;
    }
    lines.push(`  ${sh}[lid] = acc;`, ...(arg ? [`  ${shi}[lid] = at;`] : []));
    lines.push(
      ...laneTree(lanes, (to, from) => {
        if (st.combine === 'sum') return `${sh}[${to}] = ${sh}[${to}] + ${sh}[${from}];`;
        if (!arg) return `if (${better}(${sh}[${from}], ${sh}[${to}])) { ${sh}[${to}] = ${sh}[${from}]; }`;
        // ties keep the smaller index, as PyTorch's argmax does (and the reduce kernel)
        const same = `(${sh}[${from}] == ${sh}[${to}] || (wgt_isnan(${sh}[${from}]) && wgt_isnan(${sh}[${to}])))`;
        return `if (${better}(${sh}[${from}], ${sh}[${to}]) || (${same} && ${shi}[${from}] < ${shi}[${to}])) { ${sh}[${to}] = ${sh}[${from}]; ${shi}[${to}] = ${shi}[${from}]; }`;
      }),
    );
    const root = laneRoot(lanes);
    lines.push(`  let ${stat(s)} = ${arg ? `f32(${shi}[${root}])` : `${sh}[${root}]`};`, '  workgroupBarrier();');
  });

  const elementOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'element');
  if (elementOuts.length) {
    const body = (c: number | null) => renderNodes(b.nodes, { input: xName(c), scalar: (i: number) => `s${i}`, stat, index, prefix: pre('v', c) }, '');
    const stores = elementOuts.map(({ o, j }) => {
      const e = L.elementOuts.indexOf(j);
      const idx = `obase${j} + ${offset(L.outAt, e)}`;
      if (V === 1) return `${n(`out${j}`)}[${idx}] = ${storeAs(o.dtype, valueOf(o.ref, 'v'))};`;
      const parts = Array.from({ length: V }, (_, c) => storeAs(o.dtype, valueOf(o.ref, 'v', c)));
      return `${n(`out${j}`)}[(${idx}) / 4u] = vec4<${wgslType(o.dtype)}>(${parts.join(', ')});`;
    });
    const loop = rowLoop(inputsRead(b.nodes, elementOuts.map(({ o }) => o.ref)), V > 1 ? body : (c) => [...body(c), ...stores], V > 1 ? stores : []);
    // (a lane without a row computed the last row again: it writes nothing)
    if (partial(lanes)) lines.push('  if (live) {', ...loop.map((l) => `  ${l}`), '  }');
    else lines.push(...loop);
  }
  const rowOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'row');
  if (rowOuts.length) {
    lines.push(writesRow(lanes) ? `  if (${writesRow(lanes)}) {` : '  {');
    for (const { o, j } of rowOuts) lines.push(`    ${n(`out${j}`)}[o] = ${storeAs(o.dtype, valueOf(o.ref, 'v'))};`);
    lines.push('  }');
  }
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: {
      storage: [...b.inputs.map(() => 'read' as const), ...b.outputs.map(() => 'read_write' as const)],
      uniforms: 1,
      workgroupSize: [WG, 1, 1],
      workgroupBytes: lanes > 1 ? (hasArg ? 8 : 4) * WG : 0,
      builtins: BUILTINS,
    },
    paramWords: L.words,
  };
}

/** 64 / lanes rows per workgroup */
export const rowWorkgroups = (b: RowBody) => laneWorkgroups(b.kept.reduce((p, d) => p * d, 1), rowLanesOf(b));
