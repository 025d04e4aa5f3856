/**
 * What the two row renderers (render-row.ts: rows over workgroups or lanes; render-row-total.ts:
 * one workgroup with totals over all rows) share: the params words of a row body and how they
 * are written, and a recomputed arange's element in WGSL.
 */
import { wgslLang } from '../ir/scalar-lang.ts';
import type { Ref, RowBody } from '../passes/kernel-ir.ts';
import { paramWords, putScalarBits } from './kernel-spec.ts';

/** where a row body's params words go: rows, R, kept sizes, reduced sizes, per input its strides (kept, then reduced), per element output the same, the scalars' bits */
export function rowParamLayout(b: RowBody) {
  const keptAt = 2;
  const redAt = keptAt + b.kept.length;
  const per = b.kept.length + b.reduced.length;
  const inAt = redAt + b.reduced.length;
  const elementOuts = b.outputs.map((o, j) => (o.per === 'element' ? j : -1)).filter((j) => j >= 0);
  const outAt = inAt + per * b.inputs.length;
  const scalarAt = outAt + per * elementOuts.length;
  return { keptAt, redAt, per, inAt, outAt, elementOuts, scalarAt, words: scalarAt + b.scalars };
}

export function rowParams(b: RowBody, scalars: readonly number[]): Uint32Array {
  const L = rowParamLayout(b);
  const words = new Uint32Array(paramWords(L.words) * 4);
  words[0] = b.kept.reduce((p, d) => p * d, 1);
  words[1] = b.reduced.reduce((p, d) => p * d, 1);
  b.kept.forEach((d, i) => (words[L.keptAt + i] = d));
  b.reduced.forEach((d, i) => (words[L.redAt + i] = d));
  b.inputs.forEach((t, k) => t.strides!.forEach((v, d) => (words[L.inAt + k * L.per + d] = v)));
  L.elementOuts.forEach((j, e) => b.outputs[j]!.strides!.forEach((v, d) => (words[L.outAt + e * L.per + d] = v)));
  putScalarBits(words, L.scalarAt, scalars);
  return words;
}

/** a recomputed arange's element: its index over (kept, reduced) from the loop's k<d>, q<d> */
export function indexWGSL(r: Extract<Ref, { kind: 'index' }>, keptRank: number): string {
  const terms = r.strides.flatMap((s, d) => (s === 0 ? [] : [`${d < keptRank ? `k${d}` : `q${d - keptRank}`} * ${s}u`]));
  const i = `f32(${terms.length ? terms.join(' + ') : '0u'})`;
  return r.start === 0 && r.step === 1 ? i : `(${wgslLang.lit(r.start)} + ${wgslLang.lit(r.step)} * ${i})`;
}
