/** [seed] every node that is not elementwise starts a kernel of its own (matmul, reduction, index op, ...). */
import { getOp } from '../../../ir/registry.ts';
import type { Rule } from '../driver.ts';

export const seed: Rule<number> = {
  name: 'seed',
  doc: 'a matmul, reduction, index op or other non-elementwise node gets a kernel of its own, which later rules grow',
  apply(st, id) {
    const n = st.node(id);
    const op = getOp(n.op);
    if (op.kind === 'elementwise') return null;
    if (op.kind === 'matmul') st.add({ kind: 'matmul', node: id, prologueA: [], prologueB: [], epilogue: [], reductions: [] });
    else if (op.kind === 'reduce') st.add({ kind: 'reduce', node: id, prologue: [], epilogue: [] });
    else if (op.kind === 'index') st.add({ kind: 'index', node: id });
    else st.add({ kind: 'elementwise', shape: n.shape, nodes: [id] });
    st.placed.add(id);
    return { fired: null };
  },
};
