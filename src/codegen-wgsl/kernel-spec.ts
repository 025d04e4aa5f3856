/**
 * WGSL helpers every generator shares: storage types, stores, the params uniform. What a
 * kernel computes is the kernel IR (src/passes/kernel-ir.ts); these render it.
 */
import type { DType } from '../ir/dtype.ts';

export function wgslType(dtype: DType): string {
  return dtype === 'float32' ? 'f32' : dtype === 'int32' ? 'i32' : 'u32';
}

/** Converts the f32 a kernel computes in to the stored type. */
export function storeAs(dtype: DType, v: string): string {
  return dtype === 'float32' ? v : dtype === 'int32' ? `i32(${v})` : `u32(${v} != 0.0)`;
}

/** The params struct of the elementwise and reduction kernels, under the kernel's namespace prefix. */
export const paramsDecl = (prefix: string, vec4s: number) => `struct ${prefix}Params { v: array<vec4<u32>, ${vec4s}> }`;

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
