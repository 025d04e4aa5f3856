/**
 * [recompute-inputs] an elementwise kernel that reads only graph inputs (through views) and
 * scalars is not a kernel of its own when every value it hands on is read by kernels that can
 * compute it where they read it: each reader recomputes those few nodes from the graph inputs
 * (a causal mask `bias[:, :, :T, :T].eq(0)` held as a registered buffer, read by attention's
 * softmax row kernel or the scores matmul's epilogue; crossEntropy's `targets.ne(ignoreIndex)`,
 * read by its row kernel and by the count). The buffers are read on every call, so a changed
 * buffer changes the result as in eager mode: nothing is folded from their contents.
 *
 * Readers that can: an elementwise kernel's nodes, a matmul's epilogue (not its operand
 * reductions), a reduction's input (as its prologue), and a row kernel's per-element nodes,
 * reductions over its space and per-row nodes (not its totals). Each reads the value itself (no
 * view of it in between), so computing the nodes at the reader's own index, the inputs
 * broadcast to it, gives the value the reader would have loaded. Only ops that give the same
 * bits in every kernel are recomputed (comparisons, selects, sign changes: exact-ops.ts).
 */
import type { IRNode } from '../../../ir/graph.ts';
import { getOp } from '../../../ir/registry.ts';
import { sameShape, stridesOf } from '../../../ir/shape.ts';
import type { View } from '../../views.ts';
import { isExactOp } from '../../exact-ops.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';
import type { FusionState } from '../state.ts';
import { isInt32Number } from '../../../ir/hash.ts';

/** a recomputed chain stays a handful of nodes: a reader runs it for every element it reads */
export const MAX_RECOMPUTED_NODES = 6;

type Use = { kernel: number; nodes: number[] };

/** whether `from` broadcasts to `to` (NumPy rules, from the right) */
function broadcastsTo(from: readonly number[], to: readonly number[]): boolean {
  if (from.length > to.length) return false;
  const off = to.length - from.length;
  return from.every((d, i) => d === 1 || d === to[off + i]);
}

/** how a reader node of kernel `ck` reads recomputed value `m`: null where it cannot compute it there */
function readerOk(st: FusionState, ck: Kernel, c: IRNode, m: IRNode): string | null {
  switch (ck.kind) {
    case 'elementwise':
      if (!ck.nodes.includes(c.id)) return 'it is not one of its nodes';
      return broadcastsTo(m.shape, ck.shape) ? null : 'its shape does not broadcast to the kernel';
    case 'matmul':
      if (!ck.epilogue.includes(c.id)) return 'it is not in the matmul epilogue';
      return broadcastsTo(m.shape, st.node(ck.node).shape) ? null : 'its shape does not broadcast to the product';
    case 'reduce':
      return ck.node === c.id && c.inputs[0] === m.id ? null : 'it is not the reduced value';
    case 'row': {
      if (!ck.nodes.includes(c.id) || (ck.total ?? []).includes(c.id)) return 'it is not a per-row or per-element node of the row kernel';
      if (rowClass(ck, m) === null) return `its shape [${m.shape}] is neither the row space's nor one value per row`;
      return null;
    }
    default:
      return `a ${ck.kind} kernel reads it`;
  }
}

/** 'element' (broadcasts to the row space), 'row' (one value per row), or null */
export function rowClass(ck: Extract<Kernel, { kind: 'row' }>, m: IRNode): 'element' | 'row' | null {
  const kept = ck.shape.filter((_, d) => !ck.dims.includes(d));
  const keepdim = ck.shape.map((s, d) => (ck.dims.includes(d) ? 1 : s));
  if (sameShape(m.shape, kept) || sameShape(m.shape, keepdim)) return 'row';
  return broadcastsTo(m.shape, ck.shape) ? 'element' : null;
}

export const recomputeInputs: Rule<number> = {
  name: 'recompute-inputs',
  doc: 'an elementwise kernel reading only graph inputs and scalars, whose readers are elementwise kernels, matmul epilogues, reductions or row kernels, is recomputed in each of them instead of written',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'elementwise' || k.gathers?.length) return null;
    const ids = new Set(k.nodes);
    const kept = (why: string) => ({ refused: `kept kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')}): ${why}` });
    const overwritten = new Set(st.opts.inPlace?.values() ?? []);
    // an input the plan writes over in place is not read: a reader might run after the write
    const isSource = (b: IRNode) => b.op === 'input' && !overwritten.has(b.id);
    let tensorInputs = 0;
    /** slices of graph inputs from index 0 that only this kernel reads: views of the input, read through strides */
    const slices = new Map<number, { kernel: number; view: View }>();
    for (const id of k.nodes) {
      const n = st.node(id);
      // (only ops every reader computes to the same bits: exact-ops.ts)
      if (!st.isElementwise(n) || !getOp(n.op).formula || !isExactOp(st.g, n)) return null;
      if (st.outputs.has(id)) return null;
      for (const i of n.inputs) {
        if (ids.has(i)) continue;
        if (ids.has(st.baseOf(i))) return null; // a view of its own value: read at another index
        const b = st.node(st.baseOf(i));
        if (b.op === 'scalar') continue;
        if (b.op === 'slice' && b.id === i) {
          const sl = sliceView(st, b, ids, isSource);
          if (!sl) return null;
          slices.set(b.id, sl);
        } else if (!isSource(b)) return null;
        tensorInputs++;
      }
    }
    if (!tensorInputs) return null;
    if (k.nodes.length > MAX_RECOMPUTED_NODES) return kept(`it is ${k.nodes.length} nodes, more than ${MAX_RECOMPUTED_NODES} to recompute in each reader`);

    // every value leaving the kernel, and the kernels reading it
    const uses = new Map<number, Set<number>>();
    for (const id of k.nodes) {
      for (const c of st.consumers.get(id) ?? []) {
        if (ids.has(c)) continue;
        if (st.views.has(c)) return kept(`${st.nodeTag(c)} reads ${st.nodeTag(id)} through a view`);
        const ci = st.kernelOf.get(c);
        const ck = ci === undefined ? null : st.kernels[ci];
        if (!ck) return kept(`${st.nodeTag(c)} has no kernel`);
        const why = readerOk(st, ck, st.node(c), st.node(id));
        if (why) return kept(`${st.nodeTag(c)} reads ${st.nodeTag(id)} where ${why}`);
        if (!uses.has(ci!)) uses.set(ci!, new Set());
        uses.get(ci!)!.add(id);
      }
    }
    if (!uses.size) return null;
    /** the nodes of k a reader needs to compute `wanted`, in k's order */
    const closure = (wanted: Set<number>): number[] => {
      const need = new Set<number>();
      const visit = (id: number) => {
        if (need.has(id)) return;
        need.add(id);
        for (const i of st.node(id).inputs) if (ids.has(i)) visit(i);
      };
      wanted.forEach(visit);
      return k.nodes.filter((id) => need.has(id));
    };
    // (a reader may compute some of them already: a waiting node pulled into each kernel that reads it)
    const plan: Use[] = [...uses].map(([kernel, wanted]) => {
      const has = new Set(kernelNodes(st.kernels[kernel]!));
      return { kernel, nodes: closure(wanted).filter((id) => !has.has(id)) };
    });
    // what the readers bind: the sliced inputs themselves once the slices are views
    const restore = [...slices.keys()].map((id) => [id, st.views.get(id)] as const);
    for (const [id, sl] of slices) st.views.set(id, sl.view);
    const refusal = checkReaders(st, plan);
    for (const [id, v] of restore) if (v) st.views.set(id, v); else st.views.delete(id);
    if (refusal) return kept(refusal);
    for (const u of plan) {
      const ck = st.kernels[u.kernel]!;
      if (ck.kind === 'elementwise') ck.nodes.unshift(...u.nodes);
      else if (ck.kind === 'matmul') ck.epilogue.unshift(...u.nodes);
      else if (ck.kind === 'reduce') ck.prologue.unshift(...u.nodes);
      else if (ck.kind === 'row') ck.recomputed = [...(ck.recomputed ?? []), ...u.nodes];
    }
    // recomputed copies: kernelOf keeps pointing at the dropped kernel, as prologues do
    st.kernels[ki] = null;
    for (const [id, sl] of slices) {
      st.views.set(id, sl.view);
      st.kernels[sl.kernel] = null;
    }
    const where = plan.map((u) => `kernel ${u.kernel} (${st.kernels[u.kernel]!.kind})`).join(', ');
    return { fired: `recomputed kernel ${ki} (${k.nodes.map((id) => st.nodeTag(id)).join(', ')}; it reads only graph inputs) in ${where} instead of writing it` };
  },
};

/** why some reader cannot recompute its nodes, or null */
function checkReaders(st: FusionState, plan: Use[]): string | null {
  for (const u of plan) {
    const ck = st.kernels[u.kernel]!;
    const chain = u.nodes.map((id) => st.node(id));
    if (ck.kind === 'row' && chain.some((n) => rowClass(ck, n) === null)) return `a node it needs has no place in row kernel ${u.kernel}`;
    if (ck.kind !== 'row' && chain.some((n) => n.inputs.some((i) => st.node(st.baseOf(i)).dtype === 'int32'))) {
      // int32 kernels compute in i32 when every number is an integer (int-kernels.ts): keep them apart
      return 'it reads int32 values, which only a row kernel recomputes';
    }
    if (ck.kind === 'elementwise' && !sameScalarKind(st, ck, u.nodes)) return `its numbers and kernel ${u.kernel}'s are not all integers or all not`;
    const inside = new Set([...kernelNodes(ck), ...u.nodes]);
    const unwritten = u.nodes.filter((id) => st.consumersThroughViews(id).some((c) => !inside.has(c))).length;
    if (st.bindingsOf([...inside]) - unwritten > st.opts.maxBindings) return `kernel ${u.kernel} would bind more than the device's ${st.opts.maxBindings} storage buffers`;
  }
  return null;
}

/**
 * A slice from index 0 of a graph input (a causal mask's `bias[:, :, :T, :T]`) that only the
 * kernel's nodes read, as a view of the input: its elements are the input's at the steps'
 * strides, no offset, so it needs no kernel of its own.
 */
function sliceView(st: FusionState, sl: IRNode, ids: Set<number>, isSource: (b: IRNode) => boolean): { kernel: number; view: View } | null {
  const starts = sl.attrs.starts as number[];
  const steps = sl.attrs.steps as number[];
  if (starts.some((x) => x !== 0) || st.outputs.has(sl.id)) return null;
  const src = st.views.get(sl.inputs[0]) ?? { base: sl.inputs[0], shape: st.node(sl.inputs[0]).shape, strides: stridesOf(st.node(sl.inputs[0]).shape) };
  if (!isSource(st.node(src.base))) return null;
  const kernel = st.kernelOf.get(sl.id);
  const k = kernel === undefined ? null : st.kernels[kernel];
  if (!k || k.kind !== 'index' || k.node !== sl.id) return null;
  if ((st.consumers.get(sl.id) ?? []).some((c) => !ids.has(c))) return null;
  return { kernel: kernel!, view: { base: src.base, shape: [...sl.shape], strides: src.strides.map((s, d) => s * steps[d]!) } };
}

/** an elementwise kernel's integerScalars flag (kernel-build.ts: every number an int32) is the same with the chain in it */
function sameScalarKind(st: FusionState, ck: Extract<Kernel, { kind: 'elementwise' }>, chain: number[]): boolean {
  const scalarsOf = (ids: number[]) => ids.flatMap((id) => st.node(id).inputs.map((i) => st.node(st.baseOf(i))).filter((b) => b.op === 'scalar'));
  const flag = (xs: IRNode[]) => xs.length > 0 && xs.every((s) => isInt32Number(s.attrs.value));
  const theirs = scalarsOf(ck.nodes);
  return flag(theirs) === flag([...theirs, ...scalarsOf(chain)]);
}
