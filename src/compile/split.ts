/**
 * Splits a traced training graph the way AOTAutograd does: the forward (returning its
 * outputs and the activations backward needs) and the backward (reading those, the
 * incoming gradient, and returning one gradient per leaf). Node ids are kept, so the
 * trace's bindings still apply to both halves. Views (permute, reshape, expand) of
 * forward values are recomputed in the backward, which saves their source instead.
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import { isMovement } from '../passes/views.ts';

/** Forward values the backward reads, with views replaced by what they view. */
function savedSources(g: Graph): { saved: Set<number>; viewsIn: Set<number> } {
  const inBackward = new Set(g.nodes.filter((n) => n.phase === 'backward').map((n) => n.id));
  const saved = new Set<number>();
  const viewsIn = new Set<number>();
  const need = (id: number) => {
    const n = g.node(id);
    if (n.op !== 'input' && n.op !== 'scalar' && isMovement(n.op)) {
      viewsIn.add(id);
      need(n.inputs[0]);
    } else saved.add(id);
  };
  for (const n of g.nodes) if (inBackward.has(n.id)) for (const i of n.inputs) if (!inBackward.has(i)) need(i);
  return { saved, viewsIn };
}

export function forwardPart(g: Graph): Graph {
  const out = new Graph();
  for (const n of g.nodes) if (n.phase === 'forward') out.put({ ...n });
  for (const o of g.outputs) if (o.role === 'output') out.addOutput(o.id, o.role, o.label, o.key);
  // in-place writes the forward made (a running mean): the forward call applies them
  for (const o of g.outputs) if (o.role === 'mutation' && g.node(o.id).phase === 'forward') out.addOutput(o.id, o.role, o.label, o.key);
  for (const id of savedSources(g).saved) {
    const n = g.node(id);
    if (n.op !== 'input' && n.op !== 'scalar') out.addOutput(id, 'saved', '');
  }
  return out;
}

export function backwardPart(g: Graph): Graph {
  const out = new Graph();
  const { saved, viewsIn } = savedSources(g);
  for (const n of g.nodes) {
    if (n.phase === 'backward' || viewsIn.has(n.id)) out.put({ ...n });
    else if (saved.has(n.id)) {
      // forward values enter the backward as inputs (scalars stay scalars: they are bound per call)
      const asInput: IRNode = n.op === 'scalar' || n.op === 'input' ? { ...n } : { ...n, op: 'input', inputs: [], attrs: {}, name: `saved %${n.id} ${n.op}` };
      out.put(asInput);
    }
  }
  for (const o of g.outputs) if (o.role === 'grad') out.addOutput(o.id, o.role, o.label, o.key);
  return out;
}

/** The whole graph as one program (a training step that calls backward itself): no saved outputs needed. */
export function wholePart(g: Graph): Graph {
  const out = new Graph();
  for (const n of g.nodes) out.put({ ...n });
  for (const o of g.outputs) if (o.role !== 'saved') out.addOutput(o.id, o.role, o.label, o.key);
  return out;
}
