/**
 * Small rewrites that let later passes fuse more:
 * - permute(mm(a, b)) -> mm(permute(b), permute(a)): (AB)^T = B^T A^T, so a transposed
 *   matmul result (the weight gradient of a Linear) becomes a matmul that reads its
 *   operands transposed, which the matmul kernel does for free;
 * - permute(permute(x)) -> one permute, or nothing when they cancel;
 * - pow(x, 1) -> x;
 * - a one-element full (the seed of backward) -> a constant scalar, which kernels read as a
 *   uniform; not where a matmul, a reduction or an index op reads it, or the graph returns it,
 *   directly or through a view (those need a value in memory). Elementwise readers, also through
 *   views (the backward seed's expand), take the scalar.
 */
import { Graph, type IRNode } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';

export function simplify(g: Graph): Graph {
  const out = new Graph();
  const replace = new Map<number, number>();
  const r = (id: number) => replace.get(id) ?? id;
  let next = Math.max(0, ...g.nodes.map((n) => n.id)) + 1;
  const fresh = (n: Omit<IRNode, 'id'>) => out.put({ ...n, id: next++ });
  const uses = g.useCounts();
  // values some matmul, reduction or index op reads, or the graph returns, directly or through movement ops
  const returned = new Set(g.outputs.map((o) => o.id));
  const readAsTensor = new Set<number>(returned);
  for (const n of [...g.nodes].reverse()) {
    if (n.op === 'input' || n.op === 'scalar') continue;
    const kind = getOp(n.op).kind;
    if ((kind !== 'elementwise' && kind !== 'movement') || (kind === 'movement' && readAsTensor.has(n.id))) for (const i of n.inputs) readAsTensor.add(i);
    // a reshape of an expand or permute may be no view: a copy kernel then reads its source from memory
    else if (n.op === 'reshape' && ['expand', 'permute'].includes(g.node(n.inputs[0]).op)) readAsTensor.add(n.inputs[0]);
  }

  const permuteOf = (id: number, dims: number[], like: IRNode): number => {
    const src = out.node(id);
    if (src.op === 'permute') {
      const inner = src.attrs.dims as number[];
      const composed = dims.map((d) => inner[d]);
      if (composed.every((d, i) => d === i)) return src.inputs[0];
      return fresh({ ...like, op: 'permute', inputs: [src.inputs[0]], attrs: { dims: composed }, shape: dims.map((d) => src.shape[d]) }).id;
    }
    if (dims.every((d, i) => d === i)) return id;
    return fresh({ ...like, op: 'permute', inputs: [id], attrs: { dims }, shape: dims.map((d) => src.shape[d]) }).id;
  };

  for (const n of g.nodes) {
    const inputs = n.inputs.map(r);
    if (n.op === 'full' && n.dtype === 'float32' && n.shape.every((d) => d === 1) && !readAsTensor.has(n.id)) {
      out.put({ ...n, op: 'scalar', inputs: [], attrs: { value: n.attrs.value as number, constant: true }, shape: [] });
      continue;
    }
    if (n.op === 'pow' && n.attrs.exponent === 1) {
      replace.set(n.id, inputs[0]);
      continue;
    }
    if (n.op === 'permute') {
      const src = out.node(inputs[0]);
      const dims = n.attrs.dims as number[];
      if (src.op === 'mm' && dims[0] === 1 && (uses.get(n.inputs[0]) ?? 0) === 1) {
        const [a, b] = src.inputs;
        const bt = permuteOf(b, [1, 0], src);
        const at = permuteOf(a, [1, 0], src);
        const mm = fresh({ ...src, inputs: [bt, at], shape: [src.shape[1], src.shape[0]], phase: n.phase, scope: n.scope });
        replace.set(n.id, mm.id);
        continue;
      }
      const id = permuteOf(inputs[0], dims, n);
      if (id !== inputs[0] || src.op === 'permute') {
        replace.set(n.id, id);
        continue;
      }
    }
    out.put({ ...n, inputs });
  }
  for (const o of g.outputs) out.addOutput(r(o.id), o.role, o.label, o.key);
  return out;
}
