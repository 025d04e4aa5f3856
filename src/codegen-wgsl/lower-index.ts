/** Lowering an index kernel (slice, sliceScatter, gather, scatterAdd): its inputs bound as the views they are. */
import { numel, stridesOf } from '../ir/shape.ts';
import type { Kernel } from '../passes/fusion.ts';
import { indexParams, indexWGSL, INDEX_WORKGROUP, type IndexOp, type IndexSpec } from './indexing.ts';
import type { LowerContext, LoweredKernel } from './lower.ts';

export function lowerIndex(cx: LowerContext, k: Extract<Kernel, { kind: 'index' }>, index: number): LoweredKernel {
  const n = cx.g.node(k.node);
  const view = (id: number) => cx.views.get(id) ?? { base: id, shape: cx.g.node(id).shape, strides: stridesOf(cx.g.node(id).shape) };
  const views = n.inputs.map(view);
  const spec: IndexSpec = { op: n.op as IndexOp, rank: n.shape.length, dtype: n.dtype };
  const { code } = indexWGSL(spec);
  const reads = views.map((v) => v.base);
  const inputs = n.inputs.map((id, k) => ({ shape: cx.g.node(id).shape, strides: views[k].strides }));
  return {
    name: `k${index}_${n.op}`,
    kind: 'index',
    code,
    nodes: [k.node],
    scopes: n.scope ? [n.scope] : [],
    reads,
    writes: [k.node],
    scalars: [],
    params: () => indexParams(spec, { out: n.shape, attrs: n.attrs, inputs }),
    workgroups: Math.ceil(numel(n.shape) / INDEX_WORKGROUP),
    bytes: 4 * (numel(n.shape) + reads.reduce((s, id) => s + numel(cx.g.node(id).shape), 0)),
    flops: 0,
  };
}
