/**
 * How many invocations share one row of a row kernel or one output of a reduction on WebGPU
 * (the bodies' `lanes`): just enough that no lane walks more than `LANE_SPAN` elements, so
 * short rows (attention's 32 scores, a layerNorm's 48 features) run one row per invocation,
 * 64 rows per workgroup, without workgroup memory or barriers, and long rows keep a tree; and
 * where there are fewer rows than a workgroup has invocations, as many lanes as fill one (a
 * loss's mean over all its rows is one output: the whole workgroup's 64).
 *
 * Measured on lavapipe (.scratch/lanes-ab.ts, softmax rows, same process): one lane per row of
 * 32 ran the forward 10 to 20x faster than a 64-invocation workgroup per row, and was never
 * much slower up to rows of 256; past that a few lanes split the walk.
 */
import { numel } from '../ir/shape.ts';
import type { Kernel } from './kernel-ir.ts';

/** the most elements one lane walks (four of the blocked sums' blocks of 64) */
export const LANE_SPAN = 256;
const MAX_LANES = 64;

export function rowLanes(kept: readonly number[], reduced: readonly number[]): number {
  const rows = numel(kept);
  const R = numel(reduced);
  let lanes = 1;
  while (lanes < MAX_LANES && (lanes * LANE_SPAN < R || (2 * lanes * rows <= MAX_LANES && lanes < R))) lanes *= 2;
  return lanes;
}

/** the kernels with every row kernel and reduction at `lanes` lanes (WGTORCH_ROW_LANES: to measure the mapping against another) */
export function withLanes(kernels: Kernel[], lanes: number): Kernel[] {
  if (!(Number.isInteger(lanes) && lanes >= 1 && lanes <= MAX_LANES && (lanes & (lanes - 1)) === 0)) {
    throw new Error(`WGTORCH_ROW_LANES=${lanes}: lanes per row must be a power of two from 1 to ${MAX_LANES} (or leave it unset for the chosen mapping)`);
  }
  return kernels.map((k) => ((k.body.kind === 'row' && !k.body.total) || k.body.kind === 'reduce' ? { ...k, body: { ...k.body, lanes } } : k));
}
