/**
 * Splits a traced training graph the way AOTAutograd does: the forward (returning its
 * outputs and the activations backward needs) and the backward (reading those, the
 * incoming gradient, and returning one gradient per leaf). Node ids are kept, so the
 * trace's bindings still apply to both halves. Views (permute, reshape, expand) of
 * forward values are recomputed in the backward, which saves their source instead.
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import { isMovement } from '../passes/views.ts';
import { getOp } from '../ir/registry.ts';
import { isExactOp } from '../passes/exact-ops.ts';

/** Forward values the backward reads, with views (and cheap functions of the graph's inputs) replaced by what they read. */
function savedSources(g: Graph): { saved: Set<number>; viewsIn: Set<number> } {
  const inBackward = new Set(g.nodes.filter((n) => n.phase === 'backward').map((n) => n.id));
  const saved = new Set<number>();
  const viewsIn = new Set<number>();
  const fromInputs = inputFunctions(g);
  const need = (id: number) => {
    const n = g.node(id);
    if (n.op !== 'input' && n.op !== 'scalar' && (isMovement(n.op) || fromInputs.has(id))) {
      viewsIn.add(id);
      for (const i of n.inputs) need(i);
    } else saved.add(id);
  };
  for (const n of g.nodes) if (inBackward.has(n.id)) for (const i of n.inputs) if (!inBackward.has(i)) need(i);
  return { saved, viewsIn };
}

/** a recomputed function of the inputs stays a handful of nodes (the backward runs them again) */
const MAX_RECOMPUTED = 6;

/**
 * Forward nodes the backward computes again from the graph's inputs rather than saving: an
 * elementwise op that gives the same bits in any kernel (a comparison, a select) or a slice, over inputs, scalars, views and such
 * nodes, at most MAX_RECOMPUTED of them (a causal mask `bias[:, :, :T, :T].eq(0)` of a
 * registered buffer: the backward reads the buffer, which the compiled backward's version check
 * guards, and the forward writes no mask). None where the forward writes an input in place: the
 * backward would read the new value.
 */
function inputFunctions(g: Graph): Set<number> {
  const out = new Set<number>();
  if (g.outputs.some((o) => o.role === 'mutation' && g.node(o.id).phase === 'forward')) return out;
  const size = new Map<number, number>();
  for (const n of g.nodes) {
    if (n.phase !== 'forward' || n.op === 'input' || n.op === 'scalar') continue;
    const op = getOp(n.op);
    // (the backward computes them again: only ops that give the same bits in any kernel, exact-ops.ts)
    if (!isMovement(n.op) && n.op !== 'slice' && !(op.kind === 'elementwise' && op.formula && n.inputs.length > 0 && isExactOp(g, n))) continue;
    let nodes = isMovement(n.op) ? 0 : 1;
    const ok = n.inputs.every((i) => {
      const m = g.node(i);
      if (m.op === 'input' || m.op === 'scalar') return true;
      if (!out.has(i)) return false;
      nodes += size.get(i)!;
      return true;
    });
    if (ok && nodes <= MAX_RECOMPUTED) {
      out.add(n.id);
      size.set(n.id, nodes);
    }
  }
  return out;
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
