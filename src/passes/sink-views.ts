/**
 * An elementwise op of one tensor (and scalars) applied to a permute or reshape of a matmul's
 * result (or of elementwise work on it) is applied to the result itself, before the view:
 * relu(permute(reshape(add(mm, bias)))) becomes permute(reshape(relu(add(mm, bias)))). Elementwise ops commute with views, and on the matmul's own
 * layout the op joins the matmul's epilogue (a convolution's activation: conv2d returns its
 * [N*Ho*Wo, O] product permuted to [N, O, Ho, Wo]). A graph output stays as it is: moved
 * behind a view it would need a copy to be returned.
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import { sameShape } from '../ir/shape.ts';
import { envVar } from '../platform/env.ts';
import { getOp } from '../ir/registry.ts';

const SINKS = new Set(['permute', 'reshape']);

/**
 * How an elementwise node sinks below its view: `at`, the operands that are views of a
 * matmul's (or elementwise) result, read at `src` (their sources, of one shape); the other
 * tensor operands broadcast over the source's shape as they did over the view's. With other
 * operands (a Linear's bias over a [B, T, C] input: add(reshape(mm), bias)) only reshapes
 * sink, and only where those operands lie within the dims the reshape keeps at the end.
 */
interface Sink {
  at: number[];
  src: number[];
  chains: number[][];
}

function sinkOf(g: Graph, n: IRNode, outputs: Set<number>): Sink | null {
  if (n.op === 'input' || n.op === 'scalar' || outputs.has(n.id) || getOp(n.op).kind !== 'elementwise') return null;
  const tensors = n.inputs.map((id, k) => ({ id, k })).filter((x) => g.node(x.id).op !== 'scalar');
  const viewed = tensors.filter((x) => SINKS.has(g.node(x.id).op));
  if (!viewed.length) return null;
  const walk = (id: number) => {
    const chain: number[] = [];
    let src = id;
    while (SINKS.has(g.node(src).op)) {
      chain.push(src);
      src = g.node(src).inputs[0];
    }
    return { chain, src };
  };
  const first = walk(viewed[0]!.id);
  const src = g.node(first.src);
  const kind = src.op === 'input' || src.op === 'scalar' ? 'input' : getOp(src.op).kind;
  if (kind !== 'matmul' && kind !== 'elementwise') return null;
  if (tensors.length === 1) return { at: [viewed[0]!.k], src: [first.src], chains: [first.chain] };
  if (envVar('WGTORCH_SINK_WITH_OPERANDS') === '0') return null; // to measure what it saves
  // with other operands: only where the reshapes change the shape (a reshape back to the result's
  // own shape, crossEntropy's view(-1, V) of the logits, stays where the row kernels find it),
  // reshapes only, every viewed operand from a source of one shape
  if (sameShape(src.shape, n.shape)) return null;
  const reshapesOnly = (c: number[]) => c.every((id) => g.node(id).op === 'reshape');
  const views = viewed.map((x) => ({ ...x, ...walk(x.id) }));
  if (!views.every((v) => reshapesOnly(v.chain) && sameShape(g.node(v.src).shape, src.shape) && sameShape(g.node(v.id).shape, n.shape))) return null;
  // the dims the reshape keeps at the end: an operand within them broadcasts alike over both
  let keep = 0;
  while (keep < n.shape.length && keep < src.shape.length && n.shape[n.shape.length - 1 - keep] === src.shape[src.shape.length - 1 - keep]) keep++;
  const others = tensors.filter((x) => !viewed.includes(x));
  if (!others.every((x) => g.node(x.id).shape.length <= keep)) return null;
  return { at: views.map((v) => v.k), src: views.map((v) => v.src), chains: views.map((v) => v.chain) };
}

export function sinkViews(g: Graph): Graph {
  const outputs = new Set(g.outputs.map((o) => o.id));
  const out = new Graph();
  const replace = new Map<number, number>();
  const r = (id: number) => replace.get(id) ?? id;
  let next = Math.max(0, ...g.nodes.map((n) => n.id)) + 1;
  let sunk = 0;
  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    // decided on the rewritten graph, so a chain of elementwise ops sinks one after another
    const sink = sinkOf(out, { ...n, inputs }, outputs);
    if (!sink) {
      out.put({ ...n, inputs });
      continue;
    }
    sunk++;
    const srcShape = out.node(sink.src[0]!).shape;
    const applied = out.put({ ...n, id: next++, inputs: inputs.map((i, k) => (sink.at.includes(k) ? sink.src[sink.at.indexOf(k)]! : i)), shape: [...srcShape] });
    // the view chain from the matmul's result up to the op's operand, applied to the op's result
    let v = applied.id;
    for (const m of [...sink.chains[0]!].reverse()) v = out.put({ ...out.node(m), id: next++, inputs: [v], dtype: n.dtype, phase: n.phase, scope: n.scope }).id;
    replace.set(n.id, v);
  }
  if (!sunk) return g;
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  return out;
}
