/**
 * [join] an elementwise node joins the latest kernel that computes one of its inputs in its
 * iteration space (an elementwise chain, a matmul's or a reduction's epilogue), or a
 * recent elementwise kernel of its shape it does not depend on (horizontal fusion: the
 * updates of several parameters of one shape become one kernel).
 */
import type { IRNode } from '../../../ir/graph.ts';
import { asReduceOp, REDUCTIONS } from '../../../ir/reductions.ts';
import { sameShape } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';
import type { FusionState } from '../state.ts';

export const join: Rule<number> = {
  name: 'join',
  doc: 'an elementwise node joins a kernel of its shape that computes an input of it (or a sibling of its shape) when the reads line up and the bindings fit',
  apply(st, id) {
    const n = st.node(id);
    if (!st.isElementwise(n)) return null;
    const producers = n.inputs.map((i) => st.kernelOf.get(st.baseOf(i))).filter((k): k is number => k !== undefined);
    const siblings: number[] = [];
    for (let ki = st.kernels.length - 1; ki >= 0 && siblings.length < 4 && !st.feedsOnlyReduction(n); ki--) {
      const k = st.kernels[ki];
      if (k && k.kind === 'elementwise' && sameShape(k.shape, n.shape) && !k.nodes.some((m) => st.feedsOnlyReduction(st.node(m)))) siblings.push(ki);
    }
    const byLatest = (a: number, b: number) => b - a;
    const candidates = [...new Set([...[...new Set(producers)].sort(byLatest), ...siblings.sort(byLatest)])];
    const notes: string[] = [];
    for (const ki of candidates) {
      const k = st.kernels[ki];
      if (!k) continue;
      const why = canJoin(st, k, ki, n);
      if (why !== null) {
        notes.push(`did not fuse ${st.nodeTag(id)} into kernel ${ki} (${k.kind}): ${why}`);
        continue;
      }
      st.pullFloating(n, k, ki);
      if (k.kind === 'elementwise') k.nodes.push(id);
      else if (k.kind === 'matmul' || k.kind === 'reduce') k.epilogue.push(id);
      st.kernelOf.set(id, ki);
      st.placed.add(id);
      return { fired: `fused ${st.nodeTag(id)} into kernel ${ki} (${k.kind}${k.kind === 'elementwise' ? '' : ' epilogue'})`, notes };
    }
    return notes.length ? { refused: notes } : null;
  },
};

/** null when n may join kernel k as its next node (laterInputs: as if the kernels computing n's inputs ran before k) */
export function canJoin(st: FusionState, k: Kernel, ki: number, n: IRNode, laterInputs = false): string | null {
  if (k.kind === 'copy') return 'a copy kernel takes no epilogue';
  if (k.kind === 'row') return 'a row kernel takes no epilogue';
  if (k.kind === 'index') return 'an index kernel takes no epilogue';
  const shape = k.kind === 'elementwise' ? k.shape : st.node(k.node).shape;
  if (k.kind === 'reduce') {
    const r = REDUCTIONS[asReduceOp(st.node(k.node).op)];
    // its result is an index, which the kernel writes straight from the winning lane
    if (r.kind === 'select' && r.index) return `${st.node(k.node).op} takes no epilogue`;
  }
  if (k.kind !== 'elementwise' && st.feedsOnlyReduction(n)) {
    return 'its only consumer is a reduction, which will recompute it as a prologue instead of reading it from memory';
  }
  if (!sameShape(shape, n.shape)) return `shapes differ ([${n.shape}] vs the kernel's [${shape}])`;
  const inside = new Set(kernelNodes(k));
  for (const i of n.inputs) {
    const b = st.baseOf(i);
    if (st.floating.has(i)) {
      if (!st.isDirect(n, i)) return `reads the pending %${i} through a view`;
      continue;
    }
    if (inside.has(b)) {
      if (!st.isDirect(n, i)) return `reads %${b} of the same kernel through a view`;
      continue;
    }
    if (st.node(b).op === 'scalar') continue;
    const p = st.producer(i);
    if (p >= ki && !laterInputs) return `input %${b} is computed by a later kernel`;
    // (a batched product's epilogue reads its operands at (matrix, row, col), broadcast ones with stride 0)
    if (k.kind === 'matmul' && st.node(k.node).op === 'mm' && !sameShape(st.node(i).shape, n.shape) && st.views.has(i) === false && st.node(i).shape.length > 2) {
      return 'epilogue operand not indexable by (row, col)';
    }
    if (k.kind === 'reduce') return `a reduction's epilogue reads only scalars, and %${b} is a tensor`;
  }
  if (k.kind === 'reduce') {
    // the epilogue runs once per output, after the loop: it can read scalars and its own values only
    const chain = [...st.floatingChain(n), n.id];
    for (const id of chain) {
      for (const i of st.node(id).inputs) {
        const b = st.baseOf(i);
        if (!inside.has(b) && !chain.includes(i) && st.node(b).op !== 'scalar') return `a reduction's epilogue reads only scalars, and %${b} is a tensor`;
      }
    }
  }
  return st.overBindings([...inside, ...st.floatingChain(n), n.id]);
}
