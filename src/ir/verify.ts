/** Checks a graph: ids defined before use, no dangling references, shapes and dtypes re-derived from the registry. */
import { WgtorchError } from './errors.ts';
import type { Graph } from './graph.ts';
import { nodeLine } from './printer.ts';
import { getOp, type InputMeta } from './registry.ts';
import { sameShape, fmtShape } from './shape.ts';

export function verifyGraph(g: Graph): void {
  const defined = new Map<number, { shape: number[]; dtype: string }>();
  const fail = (msg: string) => {
    throw new WgtorchError(`IR verifier: ${msg}`);
  };
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      if (!defined.has(i)) fail(`node %${n.id} (${nodeLine(n)}) uses %${i}, which is not defined before it.`);
    }
    if (n.op !== 'input' && n.op !== 'scalar') {
      const op = getOp(n.op);
      if (op.arity !== n.inputs.length) fail(`node %${n.id} (${n.op}) has ${n.inputs.length} inputs, the registry says ${op.arity}.`);
      const metas: InputMeta[] = n.inputs.map((i) => {
        const m = g.node(i);
        return m.op === 'scalar' && op.kind === 'elementwise' ? (m.attrs.value as number) : { shape: m.shape, dtype: m.dtype };
      });
      let meta;
      try {
        meta = op.infer(metas, n.attrs);
      } catch (e) {
        fail(`node %${n.id} (${nodeLine(n)}) is ill-formed: ${(e as Error).message}`);
      }
      if (!sameShape(meta!.shape, n.shape) || meta!.dtype !== n.dtype) {
        fail(`node %${n.id} (${nodeLine(n)}) claims ${n.dtype}${fmtShape(n.shape)}, the registry derives ${meta!.dtype}${fmtShape(meta!.shape)}.`);
      }
    }
    if (defined.has(n.id)) fail(`node id %${n.id} is defined twice.`);
    defined.set(n.id, n);
  }
  for (const o of g.outputs) if (!defined.has(o.id)) fail(`output ${o.role} ${o.label} refers to %${o.id}, which does not exist.`);
}
