/**
 * Row kernels with totals (kernel IR `RowBody.total`: per-row values reduced over every row
 * in the same kernel, crossEntropy's mean) as WGSL: ONE workgroup, each invocation walking
 * whole rows (rows lid, lid + 64, ...) serially, so no barrier sits inside the row loop; each
 * invocation combines its rows' values into its own accumulators, then one tree in workgroup
 * memory per total reduction, and invocation 0 writes the totals. kernel-build-row only makes
 * such a body up to row-totals.ts's MAX_TOTAL_ELEMENTS elements. Kept apart from
 * render-row.ts (one workgroup per row, invocations over the row's elements): the two lane
 * mappings share only the body's data.
 *
 * Params (u32 words): rows, R (elements per row), kept sizes, reduced sizes, per input its
 * strides (kept, then reduced), per element output the same, the scalars' bits.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import type { ExprNode, Ref, RowBody } from '../passes/kernel-ir.ts';
import type { GeneratedKernel } from './elementwise.ts';
import { renderNodes } from './expr.ts';
import { paramsDecl, paramWords, storeAs, wgslType } from './kernel-spec.ts';
import { entryPoint, standalone, type Builtin, type Namespace } from './namespace.ts';
import { indexWGSL, rowParamLayout } from './row-params.ts';

/** invocations of the one workgroup (the reduce kernels' size, so that it packs with them) */
export const ROW_TOTAL_WORKGROUP = 64;

const BUILTINS: Builtin[] = [{ kind: 'local_invocation_index', name: 'lid', type: 'u32' }];

const inputsRead = (nodes: ExprNode[], extra: Ref[] = []) =>
  [...new Set([...nodes.flatMap((n) => n.args), ...extra].filter((a) => a.kind === 'input').map((a) => (a as { index: number }).index))].sort((a, b) => a - b);

export function rowTotalWGSL(b: RowBody, nsIn?: Namespace): GeneratedKernel {
  const L = rowParamLayout(b);
  const WG = ROW_TOTAL_WORKGROUP;
  const keptRank = b.kept.length;
  const redRank = b.reduced.length;
  const total = b.total ?? [];
  const S = b.steps.length;
  const ns = nsIn ?? standalone(b.inputs.length + b.outputs.length);
  const n = (s: string) => ns.prefix + s;
  const P = (i: number) => `${n('P')}(${i}u)`;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  b.inputs.forEach((t, k) => lines.push(`@group(0) @binding(${ns.storage(k)}) var<storage, read> ${n(`in${k}`)}: array<${wgslType(t.dtype)}>;`));
  b.outputs.forEach((o, j) => lines.push(`@group(0) @binding(${ns.storage(b.inputs.length + j)}) var<storage, read_write> ${n(`out${j}`)}: array<${wgslType(o.dtype)}>;`));
  lines.push(paramsDecl(ns.prefix, paramWords(L.words)));
  lines.push(`@group(0) @binding(${ns.uniform(0)}) var<uniform> ${n('p')}: ${n('Params')};`);
  lines.push(`fn ${n('P')}(i: u32) -> u32 { return ${n('p')}.v[i / 4u][i % 4u]; }`);
  const sh = n('sh');
  lines.push(`var<workgroup> ${sh}: array<f32, ${WG}>;`);
  // NaN wins (PyTorch propagates it); tested through the bits, as lavapipe compiles `v != v` to false
  const better = n('better');
  const pre = b.pre ?? [];
  const maxes = [...b.steps, ...total, ...pre].some((s) => s.kind === 'reduce' && s.combine === 'max');
  if (maxes) lines.push(`fn ${better}(v: f32, best: f32) -> bool { return v > best || (wgt_isnan(v) && !wgt_isnan(best)); }`);
  lines.push('');
  lines.push(...entryPoint(ns, String(WG), BUILTINS));
  for (let s = 0; s < b.scalars; s++) lines.push(`  let s${s} = bitcast<f32>(${P(L.scalarAt + s)});`);
  const identity = (c: 'sum' | 'max') => (c === 'sum' ? '0.0' : 'f32bits(0xff800000u)');
  total.forEach((st, t) => st.kind === 'reduce' && lines.push(`  var t${t}: f32 = ${identity(st.combine)};`));
  if (b.steps.some((st) => st.kind === 'reduce')) lines.push('  var acc: f32;', '  var part: f32;', '  var cnt: u32;');
  // the rows of this invocation, one after the other: no barrier inside
  const body: string[] = [];
  body.push('var ko = o;');
  for (let d = keptRank - 1; d >= 0; d--) body.push(`let k${d} = ko % ${P(L.keptAt + d)}; ko = ko / ${P(L.keptAt + d)};`);
  const strideWord = (at: number, k: number, d: number) => P(at + k * L.per + d);
  const baseOf = (at: number, k: number) => {
    const terms = Array.from({ length: keptRank }, (_, d) => `k${d} * ${strideWord(at, k, d)}`);
    return terms.length ? terms.join(' + ') : '0u';
  };
  b.inputs.forEach((_, k) => body.push(`let base${k} = ${baseOf(L.inAt, k)};`));
  L.elementOuts.forEach((j, e) => body.push(`let obase${j} = ${baseOf(L.outAt, e)};`));
  const offset = (at: number, k: number) => {
    const terms = Array.from({ length: redRank }, (_, d) => `q${d} * ${strideWord(at, k, keptRank + d)}`);
    return terms.length ? terms.join(' + ') : '0u';
  };
  const rowLoop = (used: number[], inner: string[]) => {
    const out = [`for (var j = 0u; j < ${P(1)}; j = j + 1u) {`, '  var jj = j;'];
    for (let d = redRank - 1; d >= 0; d--) out.push(`  let q${d} = jj % ${P(L.redAt + d)}; jj = jj / ${P(L.redAt + d)};`);
    for (const k of used) out.push(`  let x${k} = f32(${n(`in${k}`)}[base${k} + ${offset(L.inAt, k)}]);`);
    out.push(...inner.map((l) => `  ${l}`), '}');
    return out;
  };
  const stat = (i: number) => `r${i}`;
  const index = (r: Extract<Ref, { kind: 'index' }>) => indexWGSL(r, keptRank);
  const valueOf = (r: Ref, prefix: string, input = (k: number) => `x${k}`) =>
    r.kind === 'node' ? `${prefix}${r.index}` : r.kind === 'input' ? input(r.index) : r.kind === 'scalar' ? `s${r.index}` : r.kind === 'stat' ? stat(r.index) : r.kind === 'index' ? index(r) : 'acc';
  const atRow = (k: number) => `f32(${n(`in${k}`)}[base${k}])`;
  b.steps.forEach((st, s) => {
    if (st.kind === 'map') {
      // inputs of a map step are constant along the row: read at the row's first element
      body.push(...renderNodes([st.node], { input: atRow, scalar: (i) => `s${i}`, stat, index, prefix: `m${s}_` }, ''));
      body.push(`let ${stat(s)} = m${s}_0;`);
      return;
    }
    const prefix = `a${s}_`;
    const inner = renderNodes(st.nodes, { input: (k) => `x${k}`, scalar: (i) => `s${i}`, stat, index, prefix }, '');
    const v = valueOf(st.value, prefix);
    if (st.combine === 'sum') {
      // blocks of 64 into acc: one running f32 sum of a long row drifts (the reduce kernels' rule)
      body.push('acc = 0.0;', 'part = 0.0;', 'cnt = 0u;');
      inner.push(`part = part + ${v};`, 'cnt = cnt + 1u;', 'if (cnt == 64u) { acc = acc + part; part = 0.0; cnt = 0u; }');
      body.push(...rowLoop(inputsRead(st.nodes, [st.value]), inner), 'acc = acc + part;');
    } else {
      body.push(`acc = ${identity('max')};`);
      inner.push(`let val = ${v};`, `if (${better}(val, acc)) { acc = val; }`);
      body.push(...rowLoop(inputsRead(st.nodes, [st.value]), inner));
    }
    body.push(`let ${stat(s)} = acc;`);
  });
  const elementOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'element');
  if (elementOuts.length) {
    const inner = renderNodes(b.nodes, { input: (k) => `x${k}`, scalar: (i) => `s${i}`, stat, index, prefix: 'v' }, '');
    for (const { o, j } of elementOuts) {
      const e = L.elementOuts.indexOf(j);
      inner.push(`${n(`out${j}`)}[obase${j} + ${offset(L.outAt, e)}] = ${storeAs(o.dtype, valueOf(o.ref, 'v'))};`);
    }
    body.push(...rowLoop(inputsRead(b.nodes, elementOuts.map(({ o }) => o.ref)), inner));
  }
  for (const { o, j } of b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'row')) {
    body.push(`${n(`out${j}`)}[o] = ${storeAs(o.dtype, valueOf(o.ref, 'v', atRow))};`);
  }
  total.forEach((st, t) => {
    if (st.kind !== 'reduce') return;
    const v = valueOf(st.value, '', atRow);
    body.push(st.combine === 'sum' ? `t${t} = t${t} + ${v};` : `if (${better}(${v}, t${t})) { t${t} = ${v}; }`);
  });
  // before the rows: values over every row from inputs alone (row-pretotals.ts), which the rows read
  pre.forEach((st, p) => {
    const s = S + total.length + p;
    if (st.kind === 'map') {
      lines.push(...renderNodes([st.node], { input: (k) => `f32(${n(`in${k}`)}[0])`, scalar: (i) => `s${i}`, stat, prefix: `m${s}_` }, '  '));
      lines.push(`  let ${stat(s)} = m${s}_0;`);
      return;
    }
    const pass: string[] = ['var ko = o;'];
    for (let d = keptRank - 1; d >= 0; d--) pass.push(`let k${d} = ko % ${P(L.keptAt + d)}; ko = ko / ${P(L.keptAt + d)};`);
    for (const k of inputsRead(st.nodes, [st.value])) pass.push(`let base${k} = ${baseOf(L.inAt, k)};`);
    pass.push(...renderNodes(st.nodes, { input: atRow, scalar: (i) => `s${i}`, stat, index, prefix: `p${p}_` }, ''));
    const v = valueOf(st.value, `p${p}_`, atRow);
    lines.push(`  var pt${p}: f32 = ${identity(st.combine)};`, `  for (var o = lid; o < ${P(0)}; o = o + ${WG}u) {`, ...pass.map((l) => `    ${l}`));
    lines.push(st.combine === 'sum' ? `    pt${p} = pt${p} + ${v};` : `    if (${better}(${v}, pt${p})) { pt${p} = ${v}; }`, '  }');
    lines.push(`  ${sh}[lid] = pt${p};`, '  workgroupBarrier();');
    lines.push(`  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {`, '    if (lid < w) {');
    if (st.combine === 'sum') lines.push(`      ${sh}[lid] = ${sh}[lid] + ${sh}[lid + w];`);
    else lines.push(`      if (${better}(${sh}[lid + w], ${sh}[lid])) { ${sh}[lid] = ${sh}[lid + w]; }`);
    lines.push('    }', '    workgroupBarrier();', '  }');
    lines.push(`  let ${stat(s)} = ${sh}[0];`, '  workgroupBarrier();');
  });
  lines.push(`  for (var o = lid; o < ${P(0)}; o = o + ${WG}u) {`, ...body.map((l) => `    ${l}`), '  }');
  // the totals: a tree over the invocations' accumulators, then the work on them
  total.forEach((st, t) => {
    const s = S + t;
    if (st.kind === 'map') {
      lines.push(...renderNodes([st.node], { input: (k) => `f32(${n(`in${k}`)}[0])`, scalar: (i) => `s${i}`, stat, prefix: `m${s}_` }, '  '));
      lines.push(`  let ${stat(s)} = m${s}_0;`);
      return;
    }
    lines.push(`  ${sh}[lid] = t${t};`, '  workgroupBarrier();');
    lines.push(`  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {`, '    if (lid < w) {');
    if (st.combine === 'sum') lines.push(`      ${sh}[lid] = ${sh}[lid] + ${sh}[lid + w];`);
    else lines.push(`      if (${better}(${sh}[lid + w], ${sh}[lid])) { ${sh}[lid] = ${sh}[lid + w]; }`);
    lines.push('    }', '    workgroupBarrier();', '  }');
    lines.push(`  let ${stat(s)} = ${sh}[0];`, '  workgroupBarrier();');
  });
  const totalOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'total');
  if (totalOuts.length) {
    lines.push('  if (lid == 0u) {');
    for (const { o, j } of totalOuts) lines.push(`    ${n(`out${j}`)}[0] = ${storeAs(o.dtype, valueOf(o.ref, 'v'))};`);
    lines.push('  }');
  }
  lines.push('}');
  return {
    code: lines.join('\n'),
    layout: {
      storage: [...b.inputs.map(() => 'read' as const), ...b.outputs.map(() => 'read_write' as const)],
      uniforms: 1,
      workgroupSize: [WG, 1, 1],
      workgroupBytes: 4 * WG,
      builtins: BUILTINS,
    },
    paramWords: L.words,
  };
}
