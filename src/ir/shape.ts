import { WgtorchError } from './errors.ts';

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** NumPy broadcasting of any number of shapes, with PyTorch's error text. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  // the common case: every operand already has the same shape (or is a scalar)
  let first: Shape | null = null;
  let same = true;
  for (const s of shapes) {
    if (s.length === 0) continue;
    if (first === null) first = s;
    else if (!sameShape(first, s)) {
      same = false;
      break;
    }
  }
  if (same) return first ? [...first] : [];
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (let k = 0; k < shapes.length; k++) {
    const s = shapes[k];
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) { out[o] = d; continue; }
      throw new WgtorchError(
        `${op}: the size of tensor a (${out[o]}) must match the size of tensor b (${d}) at non-singleton dimension ${o}` +
          ` (shapes ${shapes.map(fmtShape).join(' and ')}).` +
          ` Fix: make the sizes equal, or 1 so that the dimension broadcasts (e.g. unsqueeze or reshape one operand).`,
      );
    }
  }
  return out;
}

/** Wrap a possibly negative dim into [0, rank), PyTorch-style error on overflow. */
export function normalizeDim(op: string, dim: number, rank: number): number {
  const r = Math.max(rank, 1);
  if (!Number.isInteger(dim) || dim < -r || dim >= r) {
    throw new WgtorchError(
      `${op}: dimension out of range (expected to be in range of [${-r}, ${r - 1}], but got ${dim}) for a tensor with ${rank} dims.` +
        ` Fix: pass a dim in [${-r}, ${r - 1}]; negative dims count from the end (-1 is the last).`,
    );
  }
  return dim < 0 ? dim + r : dim;
}

export function normalizeDims(op: string, dims: number | readonly number[] | undefined | null, rank: number): number[] {
  if (dims === undefined || dims === null) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof dims === 'number' ? [dims] : [...dims];
  const out = [...new Set(list.map((d) => normalizeDim(op, d, rank)))];
  if (rank === 0) return [];
  return out.sort((a, b) => a - b);
}

/** Shape after reducing `dims` of `shape`. */
export function reducedShape(shape: Shape, dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (dims.includes(i)) {
      if (keepdim) out.push(1);
    } else out.push(shape[i]);
  }
  return out;
}
