/** Dead-code elimination: keep what the outputs need (and every input, so bindings stay aligned). */
import { Graph } from '../ir/graph.ts';

export function dce(g: Graph): Graph {
  const live = new Set<number>(g.outputs.map((o) => o.id));
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (live.has(n.id)) for (const x of n.inputs) live.add(x);
  }
  const out = new Graph();
  for (const n of g.nodes) if (live.has(n.id) || n.op === 'input' || n.op === 'scalar') out.put({ ...n });
  for (const o of g.outputs) out.addOutput(o.id, o.role, o.label, o.key);
  return out;
}
