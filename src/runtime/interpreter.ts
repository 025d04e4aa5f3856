/**
 * The reference interpreter: runs any IR graph node by node with a backend's
 * kernels (the CPU's by default). Every optimised plan is checked against it.
 */
import type { Graph, IRNode } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';
import { numel } from '../ir/shape.ts';
import type { Backend, KernelArg, Storage } from './backend.ts';

export type Binding = (input: IRNode) => Storage | number;

export function interpret(g: Graph, bind: Binding, backend: Backend): Map<number, Storage | number> {
  const values = new Map<number, Storage | number>();
  for (const n of g.nodes) {
    if (n.op === 'input' || n.op === 'scalar') {
      values.set(n.id, bind(n));
      continue;
    }
    const op = getOp(n.op);
    if (op.kind === 'check') {
      // a value check passes its tensor through (as eager dispatch does), after checking it
      const v = values.get(n.inputs[0])!;
      const src = g.node(n.inputs[0]);
      if (typeof v !== 'number') backend.check(op, { storage: v, shape: src.shape, dtype: src.dtype }, n.attrs);
      values.set(n.id, v);
      continue;
    }
    const args: KernelArg[] = n.inputs.map((i) => {
      const v = values.get(i)!;
      const src = g.node(i);
      // scalar operands are formula arguments of elementwise ops only; everything else (an
      // expand of a folded constant, say) reads a tensor, so the number becomes one
      if (typeof v === 'number') return op.kind === 'elementwise' ? v : scalarTensor(backend, v, src);
      return { storage: v, shape: src.shape, dtype: src.dtype };
    });
    const storage = backend.alloc(n.dtype, numel(n.shape));
    backend.exec(op, args, n.attrs, { storage, shape: n.shape, dtype: n.dtype });
    values.set(n.id, storage);
  }
  return values;
}

function scalarTensor(backend: Backend, v: number, n: IRNode): KernelArg {
  const storage = backend.alloc(n.dtype, 1);
  backend.exec(getOp('full'), [], { value: v }, { storage, shape: [], dtype: n.dtype });
  return { storage, shape: [], dtype: n.dtype };
}
