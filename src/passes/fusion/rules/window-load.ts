/**
 * [window-load] an `im2col` (a pool's windows as the rows of a patch matrix, src/ir/window.ts)
 * whose only readers are row kernels over exactly that matrix (one row per window, reducing its
 * columns: a max pool's argmax, max and masks) is not a kernel of its own: the row kernel loads
 * each element from the im2col's source through the index map (TensorInput access 'window', the
 * map's fill outside the source), so the patch matrix (the size of the pooled input for a 2x2
 * pool of stride 2, more for overlapping windows) is never written. A convolution's im2col read
 * by matmuls is rule [window-operand]'s.
 */
import { sameShape } from '../../../ir/shape.ts';
import type { Rule } from '../driver.ts';
import type { Kernel } from '../groups.ts';

type RowGroup = Extract<Kernel, { kind: 'row' }>;

export const windowLoad: Rule<number> = {
  name: 'window-load',
  doc: 'an im2col read only by row kernels over its own [rows, cols] (reducing the cols) is loaded through its index map inside them instead of written',
  apply(st, ki) {
    const k = st.kernels[ki];
    if (!k || k.kind !== 'index' || st.node(k.node).op !== 'im2col') return null;
    const id = k.node;
    const n = st.node(id);
    const kept = (why: string) => ({ refused: `kept %${id} im2col as a kernel of its own: ${why}` });
    if (st.outputs.has(id)) return kept('the graph returns it');
    if (n.attrs.transposed === true) return kept('it reads its source through the transposed map');
    if (st.node(st.baseOf(n.inputs[0])).dtype !== 'float32' || n.dtype !== 'float32') return kept('it is not float32');
    const readers = new Map<number, RowGroup>();
    for (const c of st.consumersThroughViews(id)) {
      const ci = st.kernelOf.get(c);
      const ck = ci === undefined ? null : st.kernels[ci];
      if (!ck || ck.kind !== 'row' || !ck.nodes.includes(c)) return kept(`${st.nodeTag(c)} reads it outside a row kernel`);
      if (ck.total) return kept(`the row kernel of ${st.nodeTag(c)} has totals (render-row-total.ts loads plain inputs only)`);
      // one row per window, its columns the reduced dim: element (row, col) is the map's (m, q)
      if (!sameShape(ck.shape, n.shape) || ck.dims.length !== 1 || ck.dims[0] !== 1) return kept(`the row kernel of ${st.nodeTag(c)} does not run over its rows`);
      const cn = st.node(c);
      const elementRead = sameShape(cn.shape, n.shape) || ((cn.op === 'sum' || cn.op === 'max' || cn.op === 'argmax') && cn.inputs[0] === id);
      if (!elementRead) return kept(`${st.nodeTag(c)} reads it once per row`);
      if (cn.inputs.some((i) => st.baseOf(i) === id && i !== id)) return kept(`${st.nodeTag(c)} reads it through a view`);
      readers.set(ci!, ck);
    }
    if (!readers.size) return kept('nothing reads it');
    for (const ck of readers.values()) ck.windows = [...(ck.windows ?? []), id];
    st.absorb(ki, [...readers.keys()][0]!, [id]);
    return { fired: `read %${id} im2col inside row kernel ${[...readers.keys()].join(', ')} through its index map instead of writing it` };
  },
};
