/** [view-copy] the matmul template reads an operand plain or transposed; any other view is copied first. */
import { getOp } from '../../../ir/registry.ts';
import { matmulLayout } from '../../views.ts';
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
      if (v && matmulLayout(v, st.node(v.base).shape) === null) {
        copied.push(`copied ${st.nodeTag(operand)} for matmul %${id}: a view that is neither the operand nor its transpose`);
        st.materialize(operand);
      }
    }
    if (!copied.length) return null;
    return { fired: copied[copied.length - 1]!, notes: copied.slice(0, -1) };
  },
};
