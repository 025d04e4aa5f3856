/** Element types. Everything computes in float32; int32 holds class targets and
 * indices, bool holds comparison masks (stored as 0/1). */
import { WgtorchError } from './errors.ts';

export type DType = 'float32' | 'int32' | 'bool';

export type HostArray = Float32Array | Int32Array | Uint8Array;

export function hostArray(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'int32': return new Int32Array(n);
    case 'bool': return new Uint8Array(n);
  }
}

export function shortDType(dtype: DType): string {
  return dtype === 'float32' ? 'f32' : dtype === 'int32' ? 'i32' : 'bool';
}

/** PyTorch-style promotion for the three types we have: float wins, then int, then bool. */
export function promoteTypes(a: DType, b: DType): DType {
  if (a === 'float32' || b === 'float32') return 'float32';
  if (a === 'int32' || b === 'int32') return 'int32';
  return 'bool';
}

export const DTYPES: readonly DType[] = ['float32', 'int32', 'bool'];

/** Refuses a dtype wgtorch does not have (float64, float16, int64, ...), naming those it has. */
export function checkDType(op: string, dtype: unknown): asserts dtype is DType | undefined {
  if (dtype === undefined || (DTYPES as readonly unknown[]).includes(dtype)) return;
  throw new WgtorchError(
    `${op}: dtype ${JSON.stringify(dtype)} is not supported; wgtorch has ${DTYPES.map((d) => `'${d}'`).join(', ')}` +
      ` (it computes in float32: WebGPU has no float64). Fix: use dtype 'float32' (or 'int32' for indices).`,
  );
}
