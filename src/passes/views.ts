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
    } else {
      // a reshape that only splits dims of a strided view, or merges dims that lie evenly in memory
      const strides = reshapeStrides(src.shape, src.strides, n.shape);
      if (strides) views.set(n.id, { base: src.base, shape: [...n.shape], strides });
    }
  }
  return views;
}

/**
 * Strides that read `shape` from memory laid out as (`from`, `strides`) in the same row-major
 * element order, or null where a group of merged dims does not lie evenly in memory (the
 * heads of a transposed [B, T, nh, hs] merged into C): then the reshape needs a copy.
 */
export function reshapeStrides(from: readonly number[], strides: readonly number[], shape: readonly number[]): number[] | null {
  if (numel(from) !== numel(shape) || numel(shape) === 0) return null;
  const old = from.map((d, i) => ({ d, s: strides[i]! })).filter((x) => x.d !== 1);
  const out: number[] = shape.map(() => 0);
  let oi = 0;
  let ni = 0;
  while (ni < shape.length && oi < old.length) {
    // the smallest group of new dims and old dims with equal products
    let np = shape[ni]!;
    let op = old[oi]!.d;
    let nj = ni + 1;
    let oj = oi + 1;
    while (np !== op) {
      if (np < op) np *= shape[nj++]!;
      else op *= old[oj++]!.d;
    }
    for (let k = oi; k < oj - 1; k++) if (old[k]!.s !== old[k + 1]!.s * old[k + 1]!.d) return null;
    out[nj - 1] = old[oj - 1]!.s;
    for (let k = nj - 1; k > ni; k--) out[k - 1] = out[k]! * shape[k]!;
    ni = nj;
    oi = oj;
  }
  return out;
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

/** How a batched matmul reads an operand: its matrices transposed or not, rows `ld` elements apart, batch strides per batch dim (0: broadcast). */
export interface BatchedOperand {
  trans: boolean;
  ld: number;
  batch: number[];
}

/**
 * A view of rank batch.length + 2 as an operand of the bmm primitive, or null when its
 * matrices are neither rows nor columns of memory (then it is copied first).
 */
export function batchedOperand(v: View, batch: readonly number[]): BatchedOperand | null {
  const rank = v.shape.length;
  if (rank !== batch.length + 2) return null;
  const [r, c] = v.shape.slice(rank - 2);
  const [sr, sc] = v.strides.slice(rank - 2);
  const b = batch.map((_, d) => (v.shape[d] === 1 ? 0 : v.strides[d]));
  if (sc === 1 || c === 1) return { trans: false, ld: r === 1 ? c : sr, batch: b };
  if (sr === 1 || r === 1) return { trans: true, ld: c === 1 ? r : sc, batch: b };
  return null;
}

/** Whether the operand's matrices are dense (rows of exactly one matrix row apart), as a plain GEMM reads them. */
export const denseOperand = (v: View, o: BatchedOperand): boolean => {
  const [r, c] = v.shape.slice(v.shape.length - 2);
  return o.trans ? o.ld === r || c === 1 : o.ld === c || r === 1;
};
