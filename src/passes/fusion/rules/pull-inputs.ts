/**
 * [pull-inputs] an elementwise node that joined no kernel starts its own, pulling in the
 * waiting producers it reads; when they would bind more than the device allows, they get
 * kernels of their own first.
 */
import type { Rule } from '../driver.ts';

export const pullInputs: Rule<number> = {
  name: 'pull-inputs',
  doc: 'an elementwise node that joined nothing gets a kernel of its own with the waiting producers it reads (those that do not fit get their own)',
  apply(st, id) {
    const n = st.node(id);
    if (!st.isElementwise(n)) return null;
    const notes: string[] = [];
    if (st.bindingsOf([...st.floatingChain(n), id]) > st.opts.maxBindings) {
      // too many reads for one kernel: the pending producers get kernels of their own
      for (const i of n.inputs) {
        if (!st.floating.has(i)) continue;
        st.ownKernel(st.node(i));
        st.floating.delete(i);
        notes.push(`did not pull ${st.nodeTag(i)} into the kernel of ${st.nodeTag(id)}: it would bind more than the device's ${st.opts.maxBindings} storage buffers`);
      }
    }
    st.ownKernel(n);
    st.placed.add(id);
    return { fired: null, notes };
  },
};
