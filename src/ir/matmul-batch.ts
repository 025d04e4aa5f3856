/**
 * The batch of a batched matmul as strides: every operand (A, B, C, an epilogue's tensors)
 * reaches matrix z at sum over levels of (index at that level) * (its stride there). Dims of
 * size 1 drop out, and neighbouring dims merge into one level where every operand steps
 * through them as through one dim, so attention's contiguous [B, heads] is one level of
 * B * heads matrices, and a [T, T] mask read for all of them has stride 0 there.
 */
import { stridesOf } from './shape.ts';

export interface BatchLevel {
  size: number;
  /** one element stride per operand, in the order given */
  strides: number[];
}

export interface BatchLayout {
  /** matrices in all */
  count: number;
  /** outermost first; empty for a single matrix */
  levels: BatchLevel[];
}

/** Levels of `batch` (the output's batch dims) for operands with these per-dim strides. */
export function batchLayout(batch: readonly number[], strides: readonly (readonly number[])[]): BatchLayout {
  const levels: BatchLevel[] = [];
  batch.forEach((size, d) => {
    if (size === 1) return;
    const here = strides.map((s) => s[d]);
    const last = levels[levels.length - 1];
    // the previous level steps through this dim's full range exactly as one dim would
    if (last && last.strides.every((s, i) => s === here[i] * size)) {
      last.size *= size;
      last.strides = here;
    } else levels.push({ size, strides: here });
  });
  return { count: batch.reduce((p, n) => p * n, 1), levels };
}

/** Per batch dim of `batch`, the element stride of a contiguous tensor of `shape` (rank-aligned with a [..., rows, cols] tail); 0 where it broadcasts. */
export function operandBatchStrides(shape: readonly number[], batch: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = shape.length - 2 - batch.length;
  return batch.map((_, d) => {
    const i = d + off;
    return i < 0 || shape[i] === 1 ? 0 : st[i];
  });
}

/** The element offset of matrix z for operand `which`. */
export function batchOffset(layout: BatchLayout, which: number, z: number): number {
  let off = 0;
  for (let l = layout.levels.length - 1; l >= 0; l--) {
    const { size, strides } = layout.levels[l];
    off += (z % size) * strides[which];
    z = Math.floor(z / size);
  }
  return off;
}
