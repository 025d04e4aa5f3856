/**
 * The words of a failed value check (an index out of range), shared by every place that
 * runs one: the cpu backend (at once), the webgpu backend (from host data it still knows,
 * or from the device's error flags at the next readback) and compiled plans.
 */
import type { HostArray } from './dtype.ts';
import { WgtorchError } from './errors.ts';
import type { Attrs } from './registry.ts';
import { fmtShape } from './shape.ts';

export interface IndexCheckAttrs {
  lo: number;
  hi: number;
  ignore: number | null;
  /** the user-facing op ('crossEntropy', 'gather') */
  op: string;
  /** what the values are ('target', 'index') */
  what: string;
  /** how the range reads in a message: 'for 10 classes', 'for dimension 0 with size 5' */
  bounds: string;
  fix: string;
}

export function indexCheckAttrs(a: Attrs): IndexCheckAttrs {
  return a as unknown as IndexCheckAttrs;
}

/** An index kernel's own range check (gather, scatterAdd): the value, its dim and the dim's size. */
export function outOfBounds(v: number, dim: number, size: number): WgtorchError {
  return new WgtorchError(`index ${v} is out of bounds for dimension ${dim} with size ${size}`);
}

const inRange = (c: IndexCheckAttrs, v: number) => (v >= c.lo && v < c.hi) || (c.ignore !== null && v === c.ignore);

/** The first value of `data` outside the range, as an error; null when all are in range. */
export function findBadIndex(c: IndexCheckAttrs, data: HostArray, n: number, shape: readonly number[]): WgtorchError | null {
  for (let i = 0; i < n; i++) {
    const v = data[i] as number;
    if (!inRange(c, v)) {
      return new WgtorchError(
        `${c.op}: ${c.what} ${v} is out of bounds ${c.bounds} (element ${i} of the ${c.what}, shape ${fmtShape(shape)}). Fix: ${c.fix}`,
      );
    }
  }
  return null;
}

/** What the device flags of one check site report: how many were bad, the first, the extremes. */
export function deviceIndexError(c: IndexCheckAttrs, shape: readonly number[], f: { count: number; first: number; min: number; max: number }): WgtorchError {
  const which = f.count === 1 ? `${c.what} ${f.min} is` : `${f.count} ${c.what} values (from ${f.min} to ${f.max}) are`;
  return new WgtorchError(
    `${c.op}: ${which} out of bounds ${c.bounds} (first at element ${f.first} of the ${c.what}, shape ${fmtShape(shape)});` +
      ' Found on the GPU and reported at this readback: nothing queued after the check ran, and what changed since has been undone' +
      ' (parameters, gradients and optimizer state are as they were before the call that failed).' +
      ` Fix: ${c.fix}`,
  );
}
