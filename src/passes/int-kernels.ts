/**
 * Which kernels compute on integers only, and so run in i32 (WGSL) or exact integer
 * arithmetic (JavaScript) instead of f32, which holds integers exactly only to 2^24.
 * Both code generators read these predicates of the kernel IR.
 */
import { INT_FORMULA_OPS } from '../ir/scalar-lang.ts';
import { isInt32Number } from '../ir/hash.ts';
import type { ElementwiseBody, ExprNode, Kernel, ReduceBody } from './kernel-ir.ts';

/**
 * Whether every value of the kernel is an integer: int32/bool inputs and outputs, integer
 * ops with integer attributes. Such a kernel computes in i32 (exact, wrapping like PyTorch's
 * int32) instead of f32, and takes its scalars as i32 words.
 */
export function isIntKernel(spec: ElementwiseBody): boolean {
  if (!spec.inputs.length && !spec.nodes.length) return false;
  if (spec.inputs.some((x) => x.dtype === 'float32') || spec.outputs.some((o) => o.dtype === 'float32')) return false;
  return spec.nodes.every((n) => isIntNode(n, spec.integerScalars ?? false));
}

/** Whether an expression node computes on integers only (see isIntKernel), given whether its number operands are known integers. */
export function isIntNode(n: ExprNode, integerScalars: boolean): boolean {
  return (
    // an int32 result of int32 inputs means its number operands were integers (type promotion);
    // a bool result (a comparison) says nothing about them, so it may take no number
    n.dtype !== undefined &&
    n.dtype !== 'float32' &&
    INT_FORMULA_OPS.has(n.op) &&
    !(n.dtype === 'bool' && !integerScalars && n.args.some((a) => a.kind === 'scalar')) &&
    Object.entries(n.attrs).every(([k, v]) => k === 'shape' || typeof v !== 'number' || Number.isInteger(v))
  );
}

/**
 * Whether the reduction combines integers into integers (int32/bool inputs, integer
 * prologue and epilogue, int32 outputs): it then computes in i32, exactly, a sum wrapping
 * around as PyTorch's int32 does, instead of in f32 (exact only to 2^24).
 */
export function isIntReduce(spec: ReduceBody): boolean {
  if (spec.inputs.some((x) => x.dtype === 'float32') || spec.outputs.some((o) => o.dtype === 'float32')) return false;
  return [...spec.prologue, ...spec.epilogue].every((n) => isIntNode(n, false));
}


/**
 * The first number bound to a kernel that was built for integer numbers (an int32 kernel
 * comparing in i32) but is not one, or null. The compile key holds the numbers'
 * integrality, so only a replay that skips it (static mode) can find one.
 */
export function nonIntegerScalar(k: Kernel, values: readonly number[]): number | null {
  const b = k.body;
  if (b.kind === 'pack') {
    let at = 0;
    for (const part of b.parts) {
      const bad = nonIntegerScalar(part, values.slice(at, at + part.scalars.length));
      if (bad !== null) return bad;
      at += part.scalars.length;
    }
    return null;
  }
  if (b.kind !== 'elementwise' || !b.integerScalars || !isIntKernel(b)) return null;
  return values.find((v) => !isInt32Number(v)) ?? null;
}
