/**
 * [float] an elementwise node that reads only graph inputs waits for its consumers to pull
 * it into their kernel (the relu mask of a backward reads a saved activation: it belongs in
 * the matmul epilogue).
 */
import { sameShape } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import type { FusionState } from '../state.ts';

export const float: Rule<number> = {
  name: 'float',
  doc: 'an elementwise node reading only graph inputs (or other waiting nodes), read by elementwise nodes of its shape, waits for them',
  apply(st, id) {
    if (!isFloatable(st, id)) return null;
    st.floating.add(id);
    st.placed.add(id);
    return { fired: null };
  },
};

function isFloatable(st: FusionState, id: number): boolean {
  const n = st.node(id);
  if (st.outputs.has(id)) return false;
  // leave room for the consumer's own reads and write
  if (st.bindingsOf([...st.floatingChain(n), id]) > st.opts.maxBindings - 2) return false;
  for (const i of n.inputs) {
    const op = st.node(st.baseOf(i)).op;
    if (op !== 'input' && op !== 'scalar' && !st.floating.has(i)) return false;
  }
  const cs = st.consumers.get(id) ?? [];
  // a row kernel pulls in no pending producers: it reads what it does not compute from memory
  return cs.length > 0 && cs.every((c) => st.isElementwise(st.node(c)) && sameShape(st.node(c).shape, n.shape) && !st.views.has(c) && !st.rowGroupOf.has(c));
}
