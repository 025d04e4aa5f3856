/**
 * A pool's reduction as a row kernel: a lone sum or max over the columns of an `im2col` (an
 * eval-mode max pool, an avg pool: one row per window) is worth a row kernel of its own,
 * although one reduction alone is not (row-groups.ts), because a row kernel reads the windows
 * through the pool's index map ([window-load]) where a reduce kernel would read the patch
 * matrix written by an im2col kernel first. Nothing else: the reduction must read the im2col
 * itself (no view), over exactly its [rows, cols] with the cols reduced, float32, forward map.
 */
import type { Graph } from '../../ir/graph.ts';
import { sameShape } from '../../ir/shape.ts';
import type { RowGroup } from './row-groups.ts';

export function readsWindows(g: Graph, grp: RowGroup): boolean {
  if (grp.shape.length !== 2 || grp.dims.length !== 1 || grp.dims[0] !== 1) return false;
  return grp.nodes.some((id) => {
    const n = g.node(id);
    if ((n.op !== 'sum' && n.op !== 'max') || n.dtype !== 'float32') return false;
    const src = g.node(n.inputs[0]);
    return src.op === 'im2col' && src.attrs.transposed !== true && src.dtype === 'float32' && sameShape(src.shape, grp.shape);
  });
}
