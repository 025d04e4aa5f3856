/**
 * An elementwise op of one tensor (and scalars) applied to a permute or reshape of a matmul's
 * result (or of elementwise work on it) is applied to the result itself, before the view:
 * relu(permute(reshape(add(mm, bias)))) becomes permute(reshape(relu(add(mm, bias)))). Elementwise ops commute with views, and on the matmul's own
 * layout the op joins the matmul's epilogue (a convolution's activation: conv2d returns its
 * [N*Ho*Wo, O] product permuted to [N, O, Ho, Wo]). A graph output stays as it is: moved
 * behind a view it would need a copy to be returned.
 */
import { Graph } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';

const SINKS = new Set(['permute', 'reshape']);

export function sinkViews(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((o) => o.id));
  const isTarget = (id: number): boolean => {
    const n = g.node(id);
    if (n.op === 'input' || n.op === 'scalar' || outputs.has(id) || getOp(n.op).kind !== 'elementwise') return false;
    const tensors = n.inputs.filter((i) => g.node(i).op !== 'scalar');
    if (tensors.length !== 1 || !SINKS.has(g.node(tensors[0]).op)) return false;
    let src = tensors[0];
    while (SINKS.has(g.node(src).op)) src = g.node(src).inputs[0];
    const kind = g.node(src).op === 'input' || g.node(src).op === 'scalar' ? 'input' : getOp(g.node(src).op).kind;
    return kind === 'matmul' || kind === 'elementwise';
  };
  if (!g.nodes.some((n) => isTarget(n.id))) return g;

  const out = new Graph();
  const replace = new Map<number, number>();
  const r = (id: number) => replace.get(id) ?? id;
  let next = Math.max(0, ...g.nodes.map((n) => n.id)) + 1;
  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    if (!isTarget(n.id)) {
      out.put({ ...n, inputs });
      continue;
    }
    // the view chain from the op's operand down to the matmul's result
    const at = n.inputs.findIndex((i) => g.node(i).op !== 'scalar');
    const chain: number[] = [];
    let src = inputs[at];
    while (SINKS.has(out.node(src).op)) {
      chain.push(src);
      src = out.node(src).inputs[0];
    }
    const applied = out.put({ ...n, id: next++, inputs: inputs.map((i, k) => (k === at ? src : i)), shape: [...out.node(src).shape] });
    let v = applied.id;
    for (const m of chain.reverse()) v = out.put({ ...out.node(m), id: next++, inputs: [v], dtype: n.dtype, phase: n.phase, scope: n.scope }).id;
    replace.set(n.id, v);
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  return out;
}
