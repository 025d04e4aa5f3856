/**
 * [view-copy] the matmul template reads an operand plain or transposed (bmm: any matrices
 * whose rows or columns lie in memory, at batch strides); any other view is copied first.
 */
import type { IRNode } from '../../../ir/graph.ts';
import { getOp } from '../../../ir/registry.ts';
import { batchedOperand, matmulLayout, type View } from '../../views.ts';
import type { Rule } from '../driver.ts';

export const viewCopy: Rule<number> = {
  name: 'view-copy',
  doc: 'a matmul operand that is a view neither plain nor transposed gets a strided copy kernel',
  apply(st, id) {
    const n = st.node(id);
    if (getOp(n.op).kind !== 'matmul') return null;
    const copied: string[] = [];
    for (const operand of n.inputs) {
      const v = st.views.get(operand);
      if (v && !matmulReads(n, v, st.node(v.base).shape)) {
        copied.push(`copied ${st.nodeTag(operand)} for matmul %${id}: a view that is neither the operand nor its transpose`);
        st.materialize(operand);
      }
    }
    if (!copied.length) return null;
    return { fired: copied[copied.length - 1]!, notes: copied.slice(0, -1) };
  },
};

/** Whether a matmul node reads view v of its operand as it is: mm a whole matrix or its transpose, bmm any rows or columns of memory. */
function matmulReads(mm: IRNode, v: View, baseShape: readonly number[]): boolean {
  if (mm.op === 'bmm') return batchedOperand(v, mm.shape.slice(0, -2)) !== null;
  return matmulLayout(v, baseShape) !== null;
}
