/**
 * [operand-reduction] a reduction along K of a matmul operand's source joins the matmul:
 * it combines the elements the matmul loads anyway (after the operand's prologue), one
 * value per row of op(A) or per column of op(B). A bias gradient (the sum over dim 0 of
 * the output gradient G, next to the weight gradient G^T @ X) is one case; any sum, prod,
 * max or min over the rows of op(A) or the columns of op(B) is another.
 */
import { REDUCTIONS, asReduceOp } from '../../../ir/reductions.ts';
import { getOp } from '../../../ir/registry.ts';
import { matmulLayout } from '../../views.ts';
import type { Rule } from '../driver.ts';
import { kernelNodes } from '../groups.ts';

export const operandReduction: Rule<number> = {
  name: 'operand-reduction',
  doc: 'a value reduction over K of the source of a matmul operand (with the same prologue) is computed by the matmul as it loads that operand',
  apply(st, ki) {
    const k = st.kernels[ki];
    // its epilogue (elementwise work on the value that reads only scalars) comes along, to run once per line
    if (!k || k.kind !== 'reduce') return null;
    const r = st.node(k.node);
    const red = REDUCTIONS[asReduceOp(r.op)];
    if (red.kind === 'select' && red.index) return null; // an index is not a value the matmul holds
    const src = r.inputs[0];
    const dims = r.attrs.dims as number[];
    if (st.node(src).shape.length !== 2 || dims.length !== 1 || st.views.has(src) || st.node(src).dtype !== 'float32') return null;
    const later = st.consumersThroughViews(k.node).map((c) => st.kernelOf.get(c) ?? Infinity);
    const refused: string[] = [];
    for (let mi = 0; mi < st.kernels.length; mi++) {
      const m = st.kernels[mi];
      // a batched matmul would reduce each batch's operand: one value per row of every matrix, which this does not name
      if (!m || m.kind !== 'matmul' || getOp(st.node(m.node).op).kind !== 'matmul' || st.node(m.node).shape.length !== 2) continue;
      for (const operand of ['A', 'B'] as const) {
        const id = st.node(m.node).inputs[operand === 'A' ? 0 : 1];
        if (st.baseOf(id) !== src || m.reductions.some((x) => x.operand === operand)) continue;
        // an operand read through an index map (im2col) is not loaded from src's memory
        if ((operand === 'A' ? m.windowA : m.windowB) !== undefined) continue;
        const [s0, s1] = st.node(src).shape;
        const v = st.views.get(id) ?? { base: src, shape: [s0, s1], strides: [s1, 1] };
        const layout = matmulLayout(v, st.node(src).shape);
        // the operand is the source itself or its transpose (not a reshape of it)
        if (layout === null || v.shape.join() !== (layout === 'plain' ? [s0, s1] : [s1, s0]).join()) continue;
        // K is dim 1 of a plain A's source and of a transposed B's, dim 0 of the others
        const kDim = (operand === 'A') === (layout === 'plain') ? 1 : 0;
        if (dims[0] !== kDim) continue;
        const prologue = operand === 'A' ? m.prologueA : m.prologueB;
        if (prologue.join() !== k.prologue.join()) continue;
        if (later.some((c) => c <= mi) || st.producer(src) >= mi) continue;
        const why = st.overBindings([...kernelNodes(m), k.node, ...k.epilogue]);
        const what = `the ${r.op} %${k.node} over the ${operand === 'A' ? 'rows of op(A)' : 'columns of op(B)'} of matmul kernel ${mi}`;
        if (why) {
          refused.push(`did not fuse ${what}: ${why}`);
          continue;
        }
        m.reductions.push({ operand, node: k.node, epilogue: [...k.epilogue] });
        st.absorb(ki, mi, [k.node, ...k.epilogue]);
        return { fired: `fused ${what}: it combines the elements the matmul loads`, notes: refused };
      }
    }
    return refused.length ? { refused } : null;
  },
};
