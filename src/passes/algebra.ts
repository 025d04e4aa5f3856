/**
 * Small rewrites that let later passes fuse more:
 * - permute(mm(a, b)) -> mm(permute(b), permute(a)): (AB)^T = B^T A^T, so a transposed
 *   matmul result (the weight gradient of a Linear) becomes a matmul that reads its
 *   operands transposed, which the matmul kernel does for free;
 * - permute(permute(x)) -> one permute, or nothing when they cancel;
 * - pow(x, 1) -> x;
 * - a one-element full (the seed of backward) -> a constant scalar, which kernels read as a uniform.
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
    if (n.op === 'full' && n.dtype === 'float32' && n.shape.every((d) => d === 1) && readByElementwiseOnly(g, n.id)) {
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

/**
 * Whether every reader of a value, looking through views of it, is an elementwise op: only
 * those take a scalar operand. A matmul or a reduction reading it (a plain-sum loss's seed
 * gradient, expanded into a matmul operand), or returning it, needs it in memory.
 */
function readByElementwiseOnly(g: Graph, id: number): boolean {
  const outputs = new Set(g.outputs.map((o) => o.id));
  // (a reshape of an expanded or permuted view is no view: it is copied into memory)
  const todo: { v: number; strided: boolean }[] = [{ v: id, strided: false }];
  while (todo.length) {
    const { v, strided } = todo.pop()!;
    if (outputs.has(v)) return false;
    for (const m of g.nodes) {
      if (!m.inputs.includes(v)) continue;
      const kind = getOp(m.op).kind;
      if (kind === 'movement') {
        if (m.op === 'reshape' && strided) return false;
        todo.push({ v: m.id, strided: strided || m.op !== 'reshape' });
      } else if (kind !== 'elementwise') return false;
    }
  }
  return true;
}
