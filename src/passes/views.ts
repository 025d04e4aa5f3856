/**
 * Movement ops as views: permute, expand and contiguous reshapes of a value need no
 * kernel of their own; consumers read the value they view through strides.
 */
import type { Graph } from '../ir/graph.ts';
import { numel, sameShape, stridesOf } from '../ir/shape.ts';

export interface View {
  /** the value whose memory is read */
  base: number;
  shape: number[];
  strides: number[];
}

const MOVEMENT = new Set(['permute', 'expand', 'reshape']);
export const isMovement = (op: string) => MOVEMENT.has(op);

function contiguous(v: View): boolean {
  return sameShape(v.strides, stridesOf(v.shape)) || numel(v.shape) <= 1;
}

/** The view each movement node denotes, or none when it must be computed (a reshape of a permute). */
export function resolveViews(g: Graph): Map<number, View> {
  const views = new Map<number, View>();
  const viewOf = (id: number): View => views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
  for (const n of g.nodes) {
    if (!isMovement(n.op)) continue;
    const src = viewOf(n.inputs[0]);
    if (n.op === 'permute') {
      const dims = n.attrs.dims as number[];
      views.set(n.id, { base: src.base, shape: [...n.shape], strides: dims.map((d) => src.strides[d]) });
    } else if (n.op === 'expand') {
      const off = n.shape.length - src.shape.length;
      const strides = n.shape.map((d, i) => (i < off || src.shape[i - off] === 1 ? 0 : src.strides[i - off]));
      views.set(n.id, { base: src.base, shape: [...n.shape], strides });
    } else if (contiguous(src)) {
      views.set(n.id, { base: src.base, shape: [...n.shape], strides: stridesOf(n.shape) });
    }
  }
  return views;
}

/** Strides for reading view `v` at every index of `shape` (right-aligned broadcasting). */
export function broadcastView(v: View, shape: readonly number[]): number[] {
  const off = shape.length - v.shape.length;
  return shape.map((_, i) => (i < off || v.shape[i - off] === 1 ? 0 : v.strides[i - off]));
}

/** A 2-D view as a matmul operand: stored as is, or transposed; null when it is neither. */
export function matmulLayout(v: View, baseShape: readonly number[]): 'plain' | 'transposed' | null {
  if (v.shape.length !== 2 || numel(baseShape) !== numel(v.shape)) return null;
  const [r, c] = v.shape;
  if ((v.strides[1] === 1 || c === 1) && (v.strides[0] === c || r === 1)) return 'plain';
  if ((v.strides[0] === 1 || r === 1) && (v.strides[1] === r || c === 1)) return 'transposed';
  return null;
}
