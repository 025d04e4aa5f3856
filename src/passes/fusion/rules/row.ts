/**
 * [row] reductions whose results are read back over their rows, chained (softmax, logSoftmax,
 * layerNorm, crossEntropy's row part and their gradients, sibling column sums), run as one
 * row kernel. The groups are found on the whole graph first (row-groups.ts: the pattern, not
 * op names), which also fixes the order placement visits nodes in; placement then puts each
 * group in one kernel where its first node comes.
 */
import type { Rule } from '../driver.ts';
import type { FusionState } from '../state.ts';
import { findRowGroups, orderWithRowGroups } from '../row-groups.ts';

export const rowGroups: Rule<number> = {
  name: 'row-groups',
  doc: 'finds the row groups of the graph (reductions over one space read back over their rows) and the node order that keeps each together',
  apply(st) {
    if (st.order) return null;
    if (st.opts.rowKernels === false) {
      st.order = st.g.nodes;
      return { fired: null };
    }
    const groups = findRowGroups(st.g, st.views, { maxBindings: st.opts.maxBindings, inPlace: st.opts.inPlace, note: (rule, m) => st.note(rule, m) });
    for (const grp of groups) for (const id of grp.nodes) st.rowGroupOf.set(id, grp);
    st.order = groups.length ? orderWithRowGroups(st.g, groups) : st.g.nodes;
    return { fired: null };
  },
};

/** an arange read only by row kernels (not returned, nor as a view): each recomputes it from its element index */
function recomputedArange(st: FusionState, id: number): boolean {
  if (st.node(id).op !== 'arange' || st.outputs.has(id)) return false;
  const readers = st.consumersThroughViews(id);
  return readers.length > 0 && readers.every((c) => !st.views.has(c) && st.rowGroupOf.has(c));
}

export const row: Rule<number> = {
  name: 'row',
  doc: 'a node of a row group: the group becomes one row kernel where its first node is placed',
  apply(st, id) {
    const grp = st.rowGroupOf.get(id);
    if (!grp) {
      if (!recomputedArange(st, id)) return null;
      st.placed.add(id);
      return { fired: `recomputed %${id} arange in the row kernels that read it, from their element index` };
    }
    const sources = [...new Set(grp.nodes.flatMap((m) => st.node(m).inputs.map((i) => st.baseOf(i))))].filter((b) => recomputedArange(st, b));
    st.add({ kind: 'row', shape: grp.shape, dims: grp.dims, nodes: grp.nodes, ...(sources.length ? { sources } : {}), ...(grp.total ? { total: grp.total } : {}), ...(grp.pre ? { pre: grp.pre } : {}) });
    for (const m of grp.nodes) st.placed.add(m);
    return { fired: null };
  },
};
