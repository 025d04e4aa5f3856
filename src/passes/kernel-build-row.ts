/**
 * A row group (row-fusion.ts) as kernel IR: a `RowBody`. Each reduction of the group is a step
 * whose per-element expressions are the element-class nodes it needs, recomputed (a pass over
 * the row each); each per-row node is a `map` step; the element outputs are computed once more
 * in the final pass. Every tensor read is strided over (kept dims, then reduced dims).
 */
import type { IRNode } from '../ir/graph.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';
import type { Binding, ExprNode, Kernel, Ref, RowBody, RowOutput, RowStep, TensorInput } from './kernel-ir.ts';
import type { BuildContext } from './kernel-build.ts';
import { rowLanes } from './row-lanes.ts';
import { broadcastView } from './views.ts';

export interface RowGroupKernel {
  shape: number[];
  dims: number[];
  nodes: number[];
}

export function buildRowKernel(cx: BuildContext, k: RowGroupKernel, index: number): Kernel {
  const { g } = cx;
  const node = (id: number) => g.node(id);
  const baseOf = (id: number) => cx.views.get(id)?.base ?? id;
  const viewOf = (id: number) => cx.views.get(id) ?? { base: id, shape: node(id).shape, strides: stridesOf(node(id).shape) };
  const { shape, dims } = k;
  const keptDims = shape.map((_, d) => d).filter((d) => !dims.includes(d));
  const keptShape = keptDims.map((d) => shape[d]);
  const order = (st: number[]) => [...keptDims.map((d) => st[d]), ...dims.map((d) => st[d])];
  const members = new Set(k.nodes);
  const isReduce = (n: IRNode) => n.op === 'sum' || n.op === 'max';
  const isElement = (id: number) => !isReduce(node(id)) && sameShape(node(id).shape, shape);

  const inputs: { base: number; strides: number[]; dtype: TensorInput['dtype'] }[] = [];
  const scalars: number[] = [];
  const scalarRef = (id: number): Ref => {
    let s = scalars.indexOf(id);
    if (s < 0) s = scalars.push(id) - 1;
    return { kind: 'scalar', index: s };
  };
  /** a tensor read from outside, with its strides over (kept, reduced) */
  const inputRef = (base: number, strides: number[]): Ref => {
    const key = JSON.stringify(strides);
    let i = inputs.findIndex((t) => t.base === base && JSON.stringify(t.strides) === key);
    if (i < 0) i = inputs.push({ base, strides, dtype: node(base).dtype }) - 1;
    return { kind: 'input', index: i };
  };
  /** strides over `shape` of input i as a row-class consumer reads it: along its own row */
  const rowStrides = (consumer: IRNode, i: number): number[] => {
    const v = viewOf(i);
    if (consumer.shape.length === shape.length) return broadcastView(v, consumer.shape).map((s, d) => (dims.includes(d) ? 0 : s));
    const kst = broadcastView(v, keptShape);
    const out = shape.map(() => 0);
    keptDims.forEach((d, j) => (out[d] = kst[j]));
    return out;
  };

  const steps: RowStep[] = [];
  const stepOf = new Map<number, number>();
  /** per-element expressions: the element members a value needs, in graph order */
  const elementList = () => {
    const nodes: ExprNode[] = [];
    const inside = new Map<number, number>();
    const ref = (i: number): Ref => {
      const b = baseOf(i);
      if (node(b).op === 'scalar') return scalarRef(b);
      if (members.has(b)) {
        if (isElement(b)) return { kind: 'node', index: visit(b) };
        const s = stepOf.get(b);
        if (s === undefined) throw new Error(`internal compiler error: row value %${b} read before its step`);
        return { kind: 'stat', index: s };
      }
      return inputRef(b, order(broadcastView(viewOf(i), shape)));
    };
    const visit = (id: number): number => {
      const at = inside.get(id);
      if (at !== undefined) return at;
      const n = node(id);
      const args = n.inputs.map(ref);
      inside.set(id, nodes.length);
      nodes.push({ op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } });
      return nodes.length - 1;
    };
    return { nodes, ref, inside };
  };

  for (const id of k.nodes) {
    const n = node(id);
    if (isReduce(n)) {
      const list = elementList();
      const value = list.ref(n.inputs[0]);
      steps.push({ kind: 'reduce', combine: n.op as 'sum' | 'max', nodes: list.nodes, value });
      stepOf.set(id, steps.length - 1);
    } else if (!isElement(id)) {
      const args = n.inputs.map((i): Ref => {
        const b = baseOf(i);
        if (node(b).op === 'scalar') return scalarRef(b);
        if (members.has(b)) return { kind: 'stat', index: stepOf.get(b)! };
        return inputRef(b, order(rowStrides(n, i)));
      });
      steps.push({ kind: 'map', node: { op: n.op, args, attrs: n.attrs, dtype: n.dtype, origin: { ids: [id], scope: n.scope } } });
      stepOf.set(id, steps.length - 1);
    }
  }

  const written = k.nodes.filter((id) => cx.writes.has(id));
  const final = elementList();
  const outputs: RowOutput[] = written.map((id) => {
    if (isElement(id)) return { ref: final.ref(id), dtype: node(id).dtype, per: 'element', strides: order(stridesOf(shape)) };
    return { ref: { kind: 'stat', index: stepOf.get(id)! }, dtype: node(id).dtype, per: 'row' };
  });
  const body: RowBody = {
    kind: 'row',
    kept: keptShape,
    reduced: dims.map((d) => shape[d]),
    inputs: inputs.map((t) => ({ dtype: t.dtype, access: 'strided', strides: t.strides })),
    scalars: scalars.length,
    steps,
    nodes: final.nodes,
    outputs,
    lanes: rowLanes(keptShape, dims.map((d) => shape[d]!)),
  };
  const readBinding = (id: number): Binding => ({ value: id, dtype: node(id).dtype, access: 'read' });
  const writeBinding = (id: number): Binding => ({ value: id, dtype: node(id).dtype, access: 'write' });
  const reductions = k.nodes.filter((id) => isReduce(node(id))).map((id) => node(id).op);
  const scopes = [...new Set(k.nodes.map((id) => node(id).scope).filter((s): s is string => !!s))];
  const elements = numel(shape);
  return {
    name: `k${index}_row_${reductions.join('_')}`,
    body,
    bindings: [...inputs.map((t) => readBinding(t.base)), ...written.map(writeBinding)],
    scalars,
    covers: { nodes: [...k.nodes], scopes },
    bytes: 4 * (inputs.reduce((s, t) => s + numel(node(t.base).shape), 0) + written.reduce((s, id) => s + numel(node(id).shape), 0)),
    flops: elements * (steps.reduce((s, st) => s + (st.kind === 'reduce' ? st.nodes.length + 1 : 0), 0) + final.nodes.length),
  };
}
