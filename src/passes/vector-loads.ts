/**
 * Which WebGPU kernels read and write four consecutive elements as one vec4 (the bodies'
 * `vec`). On lavapipe every storage access of a non-uniform index is one load per SIMD lane,
 * bounds-checked, so a vec4 moves four elements for about the price of one: measured
 * (.scratch/raw-ew.ts, raw-red.ts, same process) an elementwise kernel over [1024, 512] ran
 * about 2x faster and a column sum of [1024, 512] (a bias gradient) about 3.5x; a GPU
 * coalesces the same accesses.
 *
 * Elementwise: every input read directly, in place, or through strides that keep the group of
 * four together (innermost stride 1 and the others multiples of 4, or innermost stride 0, one
 * value for the group), and a multiple of 4 elements. Reductions: a sum-like fold whose
 * innermost kept dim is contiguous in every input (a column sum), each invocation combining
 * four outputs. Integer kernels, gathers and windows keep the scalar mapping, as does a
 * reduction given an arena (render.ts drops `vec` there); an elementwise kernel reads its arena as
 * vec4 (binding-arena.ts starts every member on a group of four).
 *
 * WGTORCH_VEC4=0 (compile/gpu-plan.ts) keeps the scalar mapping everywhere: to measure one
 * against the other.
 */
import { REDUCTIONS } from '../ir/reductions.ts';
import { numel } from '../ir/shape.ts';
import { isIntKernel, isIntReduce } from './int-kernels.ts';
import type { ElementwiseBody, Kernel, ReduceBody, Ref, RowBody, TensorInput } from './kernel-ir.ts';

export const VEC = 4;

const vecType = (d: string) => d === 'float32' || d === 'bool';

/** how a strided input's group of four is read: as one vec4, as one value for all four, or not at all */
export function groupRead(strides: readonly number[], inner: number): 'vec4' | 'splat' | null {
  const s = strides[inner];
  if (s === 0) return 'splat';
  if (s === 1 && strides.every((v, d) => d === inner || v % VEC === 0)) return 'vec4';
  return null;
}

export function elementwiseVectorizes(b: ElementwiseBody): boolean {
  const n = numel(b.shape);
  if (!b.shape.length || n === 0 || n % VEC !== 0 || isIntKernel(b)) return false;
  if (!b.inputs.every((x) => vecType(x.dtype)) || !b.outputs.every((o) => vecType(o.dtype))) return false;
  const last = b.shape.length - 1;
  return b.inputs.every((x: TensorInput) => {
    if (x.access === 'direct' || x.access === 'alias') return true;
    if (x.access !== 'strided') return false;
    return b.shape[last]! % VEC === 0 && groupRead(x.strides!, last) !== null;
  });
}

export function reduceVectorizes(b: ReduceBody): boolean {
  const red = REDUCTIONS[b.combine];
  if (red.kind !== 'fold' || isIntReduce(b) || !b.kept.length) return false;
  const last = b.kept.length - 1;
  if (b.kept[last]! % VEC !== 0) return false;
  if (!b.inputs.every((x) => vecType(x.dtype) && x.access === 'strided')) return false;
  if (!b.outputs.every((o) => vecType(o.dtype))) return false;
  const reads = b.inputs.map((x) => groupRead(x.strides!, last));
  return reads.every((r) => r !== null) && reads.includes('vec4');
}

/** whether a ref (or any arg of the nodes) recomputes an arange from its index: per element, which a group of four does not share */
const usesIndex = (refs: Ref[]) => refs.some((r) => r.kind === 'index');

/**
 * A row kernel: groups of four along the row (its innermost reduced dim). A kernel with totals
 * (one workgroup whose invocations walk whole rows: render-row-total.ts) groups four
 * consecutive rows instead, along the innermost kept dim: a layerNorm's weight and bias
 * gradients are such rows, columns of [N, C].
 */
export function rowVectorizes(b: RowBody): boolean {
  const dims = b.total ? b.kept : b.reduced;
  if (!dims.length || dims[dims.length - 1]! % VEC !== 0) return false;
  const inner = b.total ? b.kept.length - 1 : b.kept.length + b.reduced.length - 1;
  const reads = b.inputs.map((t) => (t.access === 'strided' ? groupRead(t.strides!, inner) : null));
  if (!reads.every((r) => r !== null) || (b.total && !reads.includes('vec4'))) return false;
  if (!b.outputs.every((o) => o.per !== 'element' || groupRead(o.strides!, inner) === 'vec4')) return false;
  const nodes = [...b.nodes, ...b.steps.flatMap((st) => (st.kind === 'reduce' ? st.nodes : [st.node]))];
  const refs = [...nodes.flatMap((x) => x.args), ...b.steps.flatMap((st) => (st.kind === 'reduce' ? [st.value] : [])), ...b.outputs.map((o) => o.ref)];
  return !usesIndex(refs);
}

/** the kernels with `vec` set on every elementwise kernel and reduction that allows it */
export function withVectorLoads(kernels: Kernel[]): Kernel[] {
  return kernels.map((k) => {
    const b = k.body;
    if (b.kind === 'elementwise' && elementwiseVectorizes(b)) return { ...k, body: { ...b, vec: VEC } };
    if (b.kind === 'reduce' && reduceVectorizes(b)) return { ...k, body: { ...b, vec: VEC } };
    if (b.kind === 'row' && rowVectorizes(b)) return { ...k, body: { ...b, vec: VEC } };
    return k;
  });
}
