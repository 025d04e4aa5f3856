/**
 * A `gather` read as a load of its consumer (rule [gather-load]): an elementwise kernel that
 * reads a gather's result G (through a view, over its own iteration space) reads the
 * gather's source at the gathered position instead, so G is never written (an embedding
 * lookup feeding the add of the position embedding). That needs the consumer's view of G to
 * move along G's coordinates: each iteration dim steps one coordinate of G by a fixed
 * amount, without carrying into the next (a broadcast, a permute, a reshape that splits a
 * dim). Then the gathered element's offset in the source and the index's offset are both
 * linear in the iteration index, i.e. strided reads; only the gathered dim's offset comes
 * from the index value.
 */
import type { Graph } from '../ir/graph.ts';
import { stridesOf } from '../ir/shape.ts';
import { broadcastView, type View } from './views.ts';

export interface GatherLoad {
  /** the source and the index, each as a strided read over the iteration space */
  source: { base: number; strides: number[] };
  index: { base: number; strides: number[] };
  /** the source's stride along the gathered dim, and its size there (an index outside reads NaN) */
  dimStride: number;
  size: number;
}

/**
 * How an iteration space `shape` reads gather node `gid` through view `v` of it, or null when
 * the view does not move along G's coordinates.
 */
export function gatherLoad(g: Graph, views: Map<number, View>, gid: number, v: View, shape: readonly number[]): GatherLoad | null {
  const G = g.node(gid);
  const gShape = G.shape;
  const R = stridesOf(gShape);
  const S = broadcastView(v, shape);
  // which coordinate of G each iteration dim moves, and by how much
  const coord: number[] = [];
  const mult: number[] = [];
  const reach = gShape.map(() => 0);
  for (let d = 0; d < shape.length; d++) {
    coord[d] = -1;
    mult[d] = 0;
    if (S[d] === 0 || shape[d] === 1) continue;
    const c = R.findIndex((r, k) => S[d] % r === 0 && S[d] / r < gShape[k]);
    if (c < 0) return null;
    coord[d] = c;
    mult[d] = S[d] / R[c];
    reach[c] += (shape[d] - 1) * mult[d];
  }
  if (reach.some((r, c) => r >= gShape[c])) return null;
  const viewOf = (id: number): View => views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
  const x = viewOf(G.inputs[0]);
  const idx = viewOf(G.inputs[1]);
  const dim = G.attrs.dim as number;
  const over = (st: number[], skip: number) => shape.map((_, d) => (coord[d] < 0 || coord[d] === skip ? 0 : mult[d] * st[coord[d]]));
  return {
    source: { base: x.base, strides: over(x.strides, dim) },
    index: { base: idx.base, strides: over(idx.strides, -1) },
    dimStride: x.strides[dim],
    size: x.shape[dim],
  };
}
