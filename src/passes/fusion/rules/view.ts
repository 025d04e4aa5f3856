/** [view] movement ops cost no kernel: consumers read the value they view through strides. */
import { stridesOf } from '../../../ir/shape.ts';
import { isMovement, type View } from '../../views.ts';
import type { Rule } from '../driver.ts';

export const view: Rule<number> = {
  name: 'view',
  doc: 'a movement node (permute, expand, reshape) stays a view; a reshape of a non-contiguous view, or a returned non-contiguous view, is copied out',
  apply(st, id) {
    const n = st.node(id);
    if (!isMovement(n.op)) return null;
    st.placed.add(id);
    const v = st.views.get(id);
    if (!v) {
      // a reshape of a non-contiguous view: copy the source in its own row-major order
      const src = st.views.get(n.inputs[0]) ?? { base: n.inputs[0], shape: st.node(n.inputs[0]).shape, strides: stridesOf(st.node(n.inputs[0]).shape) };
      st.add({ kind: 'copy', node: id, base: src.base, shape: src.shape, strides: src.strides });
    } else if (st.outputs.has(id) && !isContiguousView(v)) {
      // returned: the caller gets a tensor of its own, so a transposed or expanded view is copied out
      st.materialize(id);
    }
    return { fired: null };
  },
};

function isContiguousView(v: View): boolean {
  let acc = 1;
  for (let i = v.shape.length - 1; i >= 0; i--) {
    if (v.shape[i] !== 1 && v.strides[i] !== acc) return false;
    acc *= v.shape[i];
  }
  return true;
}
