/**
 * Common-subexpression elimination: a node equal to an earlier one (op, inputs, attrs,
 * type) is replaced by it. Scalars are never merged: their values are bound per call,
 * and two that are equal now may differ next time.
 */
import { Graph } from '../ir/graph.ts';

export function cse(g: Graph): Graph {
  const out = new Graph();
  const replace = new Map<number, number>();
  const seen = new Map<string, number>();
  const r = (id: number) => replace.get(id) ?? id;
  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    if (n.op !== 'input' && n.op !== 'scalar') {
      const key = `${n.op}(${inputs.join(',')})${JSON.stringify(n.attrs)}:${n.dtype}[${n.shape.join(',')}]`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        replace.set(n.id, prev);
        continue;
      }
      seen.set(key, n.id);
    }
    out.put({ ...n, inputs });
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  return out;
}
