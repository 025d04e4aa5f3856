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
import { groupRead } from '../passes/vector-loads.ts';

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
  // vec4 (passes/vector-loads.ts): an invocation takes four consecutive rows at once, reading
  // their elements j (consecutive in memory where the innermost kept dim is) as one vec4
  const V = b.vec ?? 1;
  const read = b.inputs.map((t) => (V > 1 ? groupRead(t.strides!, keptRank - 1) : null));
  const rows = Array.from({ length: V }, (_, c) => c);
  const sub = (name: string, c: number) => (V > 1 ? `${name}_${c}` : name);
  const ns = nsIn ?? standalone(b.inputs.length + b.outputs.length);
  const n = (s: string) => ns.prefix + s;
  const P = (i: number) => `${n('P')}(${i}u)`;
  const lines: string[] = ns.entry === 'compute' ? [WGSL_PRELUDE] : [];
  const vecOf = (t: string, vec: boolean) => (vec ? `vec4<${t}>` : t);
  b.inputs.forEach((t, k) => lines.push(`@group(0) @binding(${ns.storage(k)}) var<storage, read> ${n(`in${k}`)}: array<${vecOf(wgslType(t.dtype), read[k] === 'vec4')}>;`));
  b.outputs.forEach((o, j) =>
    lines.push(`@group(0) @binding(${ns.storage(b.inputs.length + j)}) var<storage, read_write> ${n(`out${j}`)}: array<${vecOf(wgslType(o.dtype), V > 1 && o.per === 'element')}>;`),
  );
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
  if (b.steps.some((st) => st.kind === 'reduce')) for (const c of rows) lines.push(`  var ${sub('acc', c)}: f32;`, `  var ${sub('part', c)}: f32;`);
  if (b.steps.some((st) => st.kind === 'reduce')) lines.push('  var cnt: u32;');
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
    for (const k of used) {
      if (V === 1) out.push(`  let x${k} = f32(${n(`in${k}`)}[base${k} + ${offset(L.inAt, k)}]);`);
      else {
        out.push(`  let xv${k} = ${n(`in${k}`)}[${read[k] === 'vec4' ? `(base${k} + ${offset(L.inAt, k)}) / 4u` : `base${k} + ${offset(L.inAt, k)}`}];`);
        for (const c of rows) out.push(`  let x${k}_${c} = f32(xv${k}${read[k] === 'vec4' ? `[${c}]` : ''});`);
      }
    }
    out.push(...inner.map((l) => `  ${l}`), '}');
    return out;
  };
  /** input k's element of row c of the group */
  const xName = (c: number) => (k: number) => sub(`x${k}`, c);
  // (totals are one per kernel: stats past the steps have no row)
  const statOf = (c: number) => (i: number) => (i < S ? sub(`r${i}`, c) : `r${i}`);
  const stat = statOf(0);
  const index = (r: Extract<Ref, { kind: 'index' }>) => indexWGSL(r, keptRank);
  const valueOf = (r: Ref, prefix: string, input = (k: number) => `x${k}`, c = 0) =>
    r.kind === 'node'
      ? `${prefix}${r.index}`
      : r.kind === 'input'
        ? input(r.index)
        : r.kind === 'scalar'
          ? `s${r.index}`
          : r.kind === 'stat'
            ? statOf(c)(r.index)
            : r.kind === 'index'
              ? index(r)
              : 'acc';
  const atRowOf = (c: number) => (k: number) =>
    V > 1 && read[k] === 'vec4' ? `f32(${n(`in${k}`)}[base${k} / 4u][${c}])` : `f32(${n(`in${k}`)}[base${k}])`;
  const atRow = atRowOf(0);
  b.steps.forEach((st, s) => {
    if (st.kind === 'map') {
      // inputs of a map step are constant along the row: read at the row's first element
      for (const c of rows) {
        body.push(...renderNodes([st.node], { input: atRowOf(c), scalar: (i) => `s${i}`, stat: statOf(c), index, prefix: sub(`m${s}_`, c) + (V > 1 ? '_' : '') }, ''));
        body.push(`let ${statOf(c)(s)} = ${sub(`m${s}_`, c)}${V > 1 ? '_' : ''}0;`);
      }
      return;
    }
    const prefix = (c: number) => (V > 1 ? `a${s}_${c}_` : `a${s}_`);
    const inner = rows.flatMap((c) => renderNodes(st.nodes, { input: xName(c), scalar: (i) => `s${i}`, stat: statOf(c), index, prefix: prefix(c) }, ''));
    const v = (c: number) => valueOf(st.value, prefix(c), xName(c), c);
    if (st.combine === 'sum') {
      // blocks of 64 into acc: one running f32 sum of a long row drifts (the reduce kernels' rule)
      for (const c of rows) body.push(`${sub('acc', c)} = 0.0;`, `${sub('part', c)} = 0.0;`);
      body.push('cnt = 0u;');
      for (const c of rows) inner.push(`${sub('part', c)} = ${sub('part', c)} + ${v(c)};`);
      inner.push('cnt = cnt + 1u;', `if (cnt == 64u) { ${rows.map((c) => `${sub('acc', c)} = ${sub('acc', c)} + ${sub('part', c)}; ${sub('part', c)} = 0.0;`).join(' ')} cnt = 0u; }`);
      body.push(...rowLoop(inputsRead(st.nodes, [st.value]), inner), ...rows.map((c) => `${sub('acc', c)} = ${sub('acc', c)} + ${sub('part', c)};`));
    } else {
      for (const c of rows) body.push(`${sub('acc', c)} = ${identity('max')};`);
      for (const c of rows) inner.push(`let ${sub('val', c)} = ${v(c)};`, `if (${better}(${sub('val', c)}, ${sub('acc', c)})) { ${sub('acc', c)} = ${sub('val', c)}; }`);
      body.push(...rowLoop(inputsRead(st.nodes, [st.value]), inner));
    }
    for (const c of rows) body.push(`let ${statOf(c)(s)} = ${sub('acc', c)};`);
  });
  const elementOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'element');
  if (elementOuts.length) {
    const pv = (c: number) => (V > 1 ? `v${c}_` : 'v');
    const inner = rows.flatMap((c) => renderNodes(b.nodes, { input: xName(c), scalar: (i) => `s${i}`, stat: statOf(c), index, prefix: pv(c) }, ''));
    for (const { o, j } of elementOuts) {
      const e = L.elementOuts.indexOf(j);
      const idx = `obase${j} + ${offset(L.outAt, e)}`;
      if (V === 1) inner.push(`${n(`out${j}`)}[${idx}] = ${storeAs(o.dtype, valueOf(o.ref, 'v'))};`);
      else inner.push(`${n(`out${j}`)}[(${idx}) / 4u] = vec4<${wgslType(o.dtype)}>(${rows.map((c) => storeAs(o.dtype, valueOf(o.ref, pv(c), xName(c), c))).join(', ')});`);
    }
    body.push(...rowLoop(inputsRead(b.nodes, elementOuts.map(({ o }) => o.ref)), inner));
  }
  for (const { o, j } of b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'row')) {
    for (const c of rows) body.push(`${n(`out${j}`)}[o${V > 1 ? ` + ${c}u` : ''}] = ${storeAs(o.dtype, valueOf(o.ref, 'v', atRowOf(c), c))};`);
  }
  total.forEach((st, t) => {
    if (st.kind !== 'reduce') return;
    for (const c of rows) {
      const v = valueOf(st.value, '', atRowOf(c), c);
      body.push(st.combine === 'sum' ? `t${t} = t${t} + ${v};` : `if (${better}(${v}, t${t})) { t${t} = ${v}; }`);
    }
  });
  // before the rows: values over every row from inputs alone (row-pretotals.ts), which the rows read
  // (one row at a time: an input read as vec4 elsewhere is indexed inside its vec4 here)
  const preAt = (k: number) => (V > 1 && read[k] === 'vec4' ? `f32(${n(`in${k}`)}[base${k} / 4u][base${k} % 4u])` : `f32(${n(`in${k}`)}[base${k}])`);
  const preOne = (k: number) => (V > 1 && read[k] === 'vec4' ? `f32(${n(`in${k}`)}[0][0])` : `f32(${n(`in${k}`)}[0])`);
  pre.forEach((st, p) => {
    const s = S + total.length + p;
    if (st.kind === 'map') {
      lines.push(...renderNodes([st.node], { input: preOne, scalar: (i) => `s${i}`, stat, prefix: `m${s}_` }, '  '));
      lines.push(`  let ${stat(s)} = m${s}_0;`);
      return;
    }
    const pass: string[] = ['var ko = o;'];
    for (let d = keptRank - 1; d >= 0; d--) pass.push(`let k${d} = ko % ${P(L.keptAt + d)}; ko = ko / ${P(L.keptAt + d)};`);
    for (const k of inputsRead(st.nodes, [st.value])) pass.push(`let base${k} = ${baseOf(L.inAt, k)};`);
    pass.push(...renderNodes(st.nodes, { input: preAt, scalar: (i) => `s${i}`, stat, index, prefix: `p${p}_` }, ''));
    const v = valueOf(st.value, `p${p}_`, preAt);
    lines.push(`  var pt${p}: f32 = ${identity(st.combine)};`, `  for (var o = lid; o < ${P(0)}; o = o + ${WG}u) {`, ...pass.map((l) => `    ${l}`));
    lines.push(st.combine === 'sum' ? `    pt${p} = pt${p} + ${v};` : `    if (${better}(${v}, pt${p})) { pt${p} = ${v}; }`, '  }');
    lines.push(`  ${sh}[lid] = pt${p};`, '  workgroupBarrier();');
    lines.push(`  for (var w = ${WG / 2}u; w > 0u; w = w >> 1u) {`, '    if (lid < w) {');
    if (st.combine === 'sum') lines.push(`      ${sh}[lid] = ${sh}[lid] + ${sh}[lid + w];`);
    else lines.push(`      if (${better}(${sh}[lid + w], ${sh}[lid])) { ${sh}[lid] = ${sh}[lid + w]; }`);
    lines.push('    }', '    workgroupBarrier();', '  }');
    lines.push(`  let ${stat(s)} = ${sh}[0];`, '  workgroupBarrier();');
  });
  if (V === 1) lines.push(`  for (var o = lid; o < ${P(0)}; o = o + ${WG}u) {`, ...body.map((l) => `    ${l}`), '  }');
  else lines.push(`  for (var g = lid; g < ${P(0)} / ${V}u; g = g + ${WG}u) {`, `    let o = g * ${V}u;`, ...body.map((l) => `    ${l}`), '  }');
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
