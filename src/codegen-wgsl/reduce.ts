/**
 * Reductions (sum, max, argmax) with fused elementwise producers (prologue) and
 * consumers (epilogue). One workgroup per output element: its invocations stride
 * over the reduced elements, then combine in workgroup memory.
 *
 * Params (u32 words): nOut, R (reduced count), kept shape[keptRank], reduced shape[redRank],
 * per input strides[keptRank + redRank], scalar bits.
 */
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import { renderNodes } from './expr.ts';
import { PARAMS_DECL, paramWords, putScalarBits, storeAs, wgslType, type ReduceSpec } from './kernel-spec.ts';

export const REDUCE_WORKGROUP = 64;

function layout(spec: ReduceSpec) {
  const keptAt = 2;
  const redAt = keptAt + spec.keptRank;
  const stridesAt = redAt + spec.redRank;
  const per = spec.keptRank + spec.redRank;
  const scalarAt = stridesAt + per * spec.inputs.length;
  return { keptAt, redAt, stridesAt, per, scalarAt, words: scalarAt + spec.scalars };
}

export function reduceWGSL(spec: ReduceSpec): { code: string; paramWords: number } {
  const L = layout(spec);
  const WG = REDUCE_WORKGROUP;
  const lines: string[] = [WGSL_PRELUDE];
  spec.inputs.forEach((inp, k) => lines.push(`@group(0) @binding(${k}) var<storage, read> in${k}: array<${wgslType(inp.dtype)}>;`));
  spec.results.forEach((r, j) =>
    lines.push(`@group(0) @binding(${spec.inputs.length + j}) var<storage, read_write> out${j}: array<${wgslType(r.dtype)}>;`),
  );
  lines.push(PARAMS_DECL.replace('PARAM_VEC4S', String(paramWords(L.words))));
  lines.push(`@group(0) @binding(${spec.inputs.length + spec.results.length}) var<uniform> p: Params;`);
  lines.push('fn P(i: u32) -> u32 { return p.v[i / 4u][i % 4u]; }');
  const isArg = spec.op === 'argmax';
  lines.push(`var<workgroup> shv: array<f32, ${WG}>;`);
  if (isArg) lines.push(`var<workgroup> shi: array<u32, ${WG}>;`);
  const combine = spec.op === 'sum' ? null : 'better';
  // NaN wins (PyTorch propagates it). Tested through the bits: lavapipe compiles `v != v` to false.
  if (combine) {
    lines.push('fn better(v: f32, best: f32) -> bool { return v > best || (wgt_isnan(v) && !wgt_isnan(best)); }');
  }
  lines.push('');
  lines.push(`@compute @workgroup_size(${WG})`);
  lines.push(
    'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {',
  );
  lines.push('  let o = wid.x + wid.y * nwg.x;');
  lines.push('  if (o >= P(0u)) { return; }');
  // base offsets from the kept index
  lines.push('  var ko = o;');
  for (let d = spec.keptRank - 1; d >= 0; d--) {
    lines.push(`  let k${d} = ko % P(${L.keptAt + d}u); ko = ko / P(${L.keptAt + d}u);`);
  }
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: spec.keptRank }, (_, d) => `k${d} * P(${L.stridesAt + k * L.per + d}u)`);
    lines.push(`  let base${k} = ${terms.length ? terms.join(' + ') : '0u'};`);
  });
  for (let s = 0; s < spec.scalars; s++) lines.push(`  let s${s} = bitcast<f32>(P(${L.scalarAt + s}u));`);
  const init = spec.op === 'sum' ? '0.0' : 'f32bits(0xff800000u)';
  lines.push(`  var acc: f32 = ${init};`);
  if (isArg) lines.push('  var at: u32 = 0u;');
  if (spec.op === 'sum') lines.push('  var part: f32 = 0.0;', '  var cnt: u32 = 0u;');
  lines.push(`  for (var r = lid; r < P(1u); r = r + ${WG}u) {`);
  lines.push('    var rr = r;');
  for (let d = spec.redRank - 1; d >= 0; d--) lines.push(`    let q${d} = rr % P(${L.redAt + d}u); rr = rr / P(${L.redAt + d}u);`);
  spec.inputs.forEach((_, k) => {
    const terms = Array.from({ length: spec.redRank }, (_, d) => `q${d} * P(${L.stridesAt + k * L.per + spec.keptRank + d}u)`);
    lines.push(`    let x${k} = f32(in${k}[base${k}${terms.length ? ' + ' + terms.join(' + ') : ''}]);`);
  });
  const names = { input: (k: number) => `x${k}`, scalar: (s: number) => `s${s}`, prefix: 'pv' };
  lines.push(...renderNodes(spec.prologue, names, '    '));
  const value = spec.value.kind === 'node' ? `pv${spec.value.index}` : spec.value.kind === 'input' ? `x${spec.value.index}` : `s${(spec.value as { index: number }).index}`;
  // a sum adds blocks of 64 into acc: one running f32 sum of a million values drifts (4M x 0.1 gave 0.10006)
  if (spec.op === 'sum') lines.push(`    part = part + ${value};`, '    cnt = cnt + 1u;', '    if (cnt == 64u) { acc = acc + part; part = 0.0; cnt = 0u; }');
  else {
    lines.push(`    let val = ${value};`);
    lines.push(`    if (better(val, acc)) { acc = val;${isArg ? ' at = r;' : ''} }`);
  }
  lines.push('  }');
  if (spec.op === 'sum') lines.push('  acc = acc + part;');
  lines.push('  shv[lid] = acc;');
  if (isArg) lines.push('  shi[lid] = at;');
  lines.push('  workgroupBarrier();');
  lines.push(`  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {`);
  lines.push('    if (lid < s) {');
  if (spec.op === 'sum') lines.push('      shv[lid] = shv[lid] + shv[lid + s];');
  else {
    // ties keep the smaller index, as PyTorch's argmax does
    const tie = isArg ? ' || ((shv[lid + s] == shv[lid] || (wgt_isnan(shv[lid + s]) && wgt_isnan(shv[lid]))) && shi[lid + s] < shi[lid])' : '';
    lines.push(`      if (better(shv[lid + s], shv[lid])${tie}) { shv[lid] = shv[lid + s];${isArg ? ' shi[lid] = shi[lid + s];' : ''} }`);
  }
  lines.push('    }');
  lines.push('    workgroupBarrier();');
  lines.push('  }');
  lines.push('  if (lid == 0u) {');
  if (isArg) lines.push('    out0[o] = i32(shi[0]);');
  else {
    lines.push('    let red = shv[0];');
    const enames = { input: (k: number) => `x${k}`, scalar: (s: number) => `s${s}`, acc: 'red', prefix: 'ev' };
    lines.push(...renderNodes(spec.epilogue, enames, '    '));
    spec.results.forEach((r, j) => {
      const res = r.ref.kind === 'node' ? `ev${r.ref.index}` : 'red';
      lines.push(`    out${j}[o] = ${storeAs(r.dtype, res)};`);
    });
  }
  lines.push('  }');
  lines.push('}');
  return { code: lines.join('\n'), paramWords: L.words };
}

export function reduceParams(
  spec: ReduceSpec,
  keptShape: readonly number[],
  redShape: readonly number[],
  strides: (readonly number[])[],
  scalars: readonly number[],
): Uint32Array {
  const L = layout(spec);
  const words = new Uint32Array(paramWords(L.words) * 4);
  words[0] = keptShape.reduce((p, d) => p * d, 1);
  words[1] = redShape.reduce((p, d) => p * d, 1);
  keptShape.forEach((d, i) => (words[L.keptAt + i] = d));
  redShape.forEach((d, i) => (words[L.redAt + i] = d));
  strides.forEach((s, k) => s.forEach((v, d) => (words[L.stridesAt + k * L.per + d] = v)));
  putScalarBits(words, L.scalarAt, scalars);
  return words;
}
