/** [row-sum] a column sum over dim 0 of G next to a matmul reading G transposed as A: one kernel. */
import { matmulLayout } from '../../views.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes } from '../groups.ts';

export const rowSum: Rule<number> = {
  name: 'row-sum',
  doc: 'a sum over dim 0 of a 2-d G joins a matmul whose A operand is G transposed (it sums the rows of op(A) as it loads them)',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'reduce' || k.epilogue.length) return null;
    const r = st.node(k.node);
    if (r.op !== 'sum' || r.attrs.keepdim !== true && r.attrs.keepdim !== false) return null;
    const src = r.inputs[0];
    const dims = r.attrs.dims as number[];
    if (st.node(src).shape.length !== 2 || dims.length !== 1 || dims[0] !== 0) return null;
    const later = st.consumersThroughViews(k.node).map((c) => st.kernelOf.get(c) ?? Infinity);
    const refused: string[] = [];
    for (let mi = 0; mi < st.kernels.length; mi++) {
      const m = st.kernels[mi];
      if (!m || m.kind !== 'matmul' || m.rowSumA !== null) continue;
      const a = st.node(m.node).inputs[0];
      const av = st.views.get(a);
      if (st.baseOf(a) !== st.baseOf(src) || !av || matmulLayout(av, st.node(av.base).shape) !== 'transposed') continue;
      if (st.views.has(src) && st.views.get(src)!.base !== src) continue;
      if (m.prologueA.join() !== k.prologue.join()) continue;
      if (later.some((c) => c <= mi) || st.producer(src) >= mi) continue;
      const why = st.overBindings([...kernelNodes(m), k.node]);
      if (why) {
        refused.push(`did not fuse the column sum %${k.node} into matmul kernel ${mi}: ${why}`);
        continue;
      }
      m.rowSumA = k.node;
      st.absorb(ki, mi, [k.node]);
      return { fired: `fused the column sum %${k.node} into matmul kernel ${mi}: it sums the rows of its transposed A operand as it loads them`, notes: refused };
    }
    return refused.length ? { refused } : null;
  },
};
