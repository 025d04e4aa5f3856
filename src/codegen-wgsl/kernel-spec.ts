/**
 * What a generated kernel computes, independent of how it was found: eager mode
 * describes one op this way, the fusion pass a whole group of IR nodes. The WGSL
 * generators read only this.
 */
import type { DType } from '../ir/dtype.ts';
import type { Attrs } from '../ir/registry.ts';

/** A value inside a kernel: a tensor input, a uniform scalar, or an earlier expression. */
export type Ref =
  | { kind: 'input'; index: number }
  | { kind: 'scalar'; index: number }
  | { kind: 'node'; index: number }
  /** the reduced value, inside a reduction's epilogue */
  | { kind: 'acc' };

export interface ExprNode {
  op: string;
  args: Ref[];
  attrs: Attrs;
  /** the value's dtype, where known: a kernel whose values are all integers computes in i32 */
  dtype?: DType;
  /** IR node ids this expression stands for, and their module path: kept as comments and in the line map. */
  origin?: { ids: number[]; scope?: string };
}

export interface KernelInput {
  dtype: DType;
  /**
   * direct: element i of a tensor shaped like the output;
   * strided: read through per-dim strides from the params (broadcasts, permutes);
   * alias: the output buffer itself (in-place ops read the old value there).
   */
  access: 'direct' | 'strided' | 'alias';
  /** for 'alias': which output's buffer holds the value (default 0) */
  aliasOf?: number;
}

export interface ElementwiseSpec {
  kind: 'elementwise';
  rank: number;
  inputs: KernelInput[];
  scalars: number;
  /** the scalars are known to be integers (eager kernels keyed by it): comparisons with them may compute in i32 */
  integerScalars?: boolean;
  nodes: ExprNode[];
  outputs: { ref: Ref; dtype: DType }[];
}

export interface ReduceSpec {
  kind: 'reduce';
  op: 'sum' | 'max' | 'argmax';
  keptRank: number;
  redRank: number;
  /** all read through strides over (kept dims, then reduced dims) */
  inputs: KernelInput[];
  scalars: number;
  /** elementwise producers fused before the reduction */
  prologue: ExprNode[];
  value: Ref;
  /** elementwise consumers fused after it (refs to { kind: 'acc' }) */
  epilogue: ExprNode[];
  /** the values written, one output binding each: the reduced value and/or epilogue nodes */
  results: { ref: Ref; dtype: DType }[];
}

export function wgslType(dtype: DType): string {
  return dtype === 'float32' ? 'f32' : dtype === 'int32' ? 'i32' : 'u32';
}

/** Converts the f32 a kernel computes in to the stored type. */
export function storeAs(dtype: DType, v: string): string {
  return dtype === 'float32' ? v : dtype === 'int32' ? `i32(${v})` : `u32(${v} != 0.0)`;
}

export const PARAMS_DECL = `struct Params { v: array<vec4<u32>, PARAM_VEC4S> }`;

/** Params are u32 words; scalars travel as their f32 bits. */
export function paramWords(words: number): number {
  return Math.max(1, Math.ceil(words / 4));
}

const f32Scratch = new Float32Array(1);
const u32View = new Uint32Array(f32Scratch.buffer);
/** Writes numbers as their f32 bit patterns into u32 param words, from `at` on. */
export function putScalarBits(words: Uint32Array, at: number, values: readonly number[]): void {
  values.forEach((v, s) => {
    f32Scratch[0] = v;
    words[at + s] = u32View[0];
  });
}
