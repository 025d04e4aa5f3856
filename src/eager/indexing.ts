/**
 * Indexing and joining, as composites over four index primitives of the registry
 * (slice, sliceScatter, gather, scatterAdd) plus reshapes, permutes and elementwise ops:
 * narrow, select, t.index(...) with numbers, null, torch.slice(...) and int32 tensors,
 * split, chunk, cat, stack, gather, indexSelect, tril, triu. Arguments are checked here,
 * with PyTorch's messages, before anything runs.
 */
import { WgtorchError } from '../ir/errors.ts';
import { broadcastShapes, fmtShape, normalizeDim, numel, stridesOf } from '../ir/shape.ts';
import { checkIndex } from './checks.ts';
import { apply } from './dispatch.ts';
import { Tensor } from './tensor.ts';

/** torch.slice(start?, stop?, step?): Python's start:stop:step as an index item. */
export class Slice {
  constructor(
    readonly start: number | null = null,
    readonly stop: number | null = null,
    readonly step: number | null = null,
  ) {}
  toString(): string {
    const s = (v: number | null) => (v === null ? '' : String(v));
    return `${s(this.start)}:${s(this.stop)}${this.step === null ? '' : `:${this.step}`}`;
  }
}
export function slice(start: number | null = null, stop?: number | null, step?: number | null): Slice {
  return new Slice(start, stop ?? null, step ?? null);
}
export type IndexItem = number | null | Slice | Tensor;

const wholeShape = (t: Tensor) => ({ starts: t.shape.map(() => 0), steps: t.shape.map(() => 1), shape: [...t.shape] });

function checkInt(op: string, what: string, v: number): void {
  if (!Number.isInteger(v)) throw new WgtorchError(`${op}: ${what} must be an integer, got ${v}.`);
}

/** Python's slice.indices(size) for a positive step: [start, count]. */
function sliceRange(s: Slice, size: number): [number, number] {
  const step = s.step ?? 1;
  checkInt('index', 'a slice step', step);
  if (step <= 0) throw new WgtorchError(`index: step must be greater than zero (got slice ${s}). Fix: use a positive step; negative steps are refused, as in PyTorch.`);
  const clampEnd = (v: number | null, dflt: number) => {
    if (v === null) return dflt;
    checkInt('index', 'a slice bound', v);
    const w = v < 0 ? v + size : v;
    return Math.min(Math.max(w, 0), size);
  };
  const start = clampEnd(s.start, 0);
  const stop = clampEnd(s.stop, size);
  return [start, stop > start ? Math.ceil((stop - start) / step) : 0];
}

function sliced(t: Tensor, starts: number[], steps: number[], shape: number[]): Tensor {
  if (shape.every((n, i) => n === t.shape[i])) return t; // the whole tensor: nothing to read
  return apply('slice', [t], { starts, steps, shape });
}

export function narrow(t: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim('narrow', dim, t.dim());
  const size = t.shape[d];
  checkInt('narrow', 'start', start);
  checkInt('narrow', 'length', length);
  const st = start < 0 ? start + size : start;
  if (st < 0 || st > size) {
    throw new WgtorchError(`narrow: start (${start}) is out of range for dimension ${d} of size ${size} (shape ${fmtShape(t.shape)}). Fix: use -${size} <= start <= ${size}.`);
  }
  if (length < 0 || st + length > size) {
    throw new WgtorchError(
      `narrow: start (${st}) + length (${length}) exceeds dimension size (${size}) of dim ${d} (shape ${fmtShape(t.shape)}). Fix: take at most ${size - st} elements from there.`,
    );
  }
  const w = wholeShape(t);
  w.starts[d] = st;
  w.shape[d] = length;
  return sliced(t, w.starts, w.steps, w.shape);
}

export function select(t: Tensor, dim: number, index: number): Tensor {
  if (t.dim() === 0) throw new WgtorchError('select: cannot be applied to a 0-dim tensor. Fix: select needs a tensor with at least one dim.');
  const d = normalizeDim('select', dim, t.dim());
  const size = t.shape[d];
  checkInt('select', 'the index', index);
  if (index < -size || index >= size) {
    throw new WgtorchError(`select: index ${index} is out of bounds for dimension ${d} with size ${size} (shape ${fmtShape(t.shape)}). Fix: use -${size} <= index < ${size}.`);
  }
  const i = index < 0 ? index + size : index;
  const w = wholeShape(t);
  w.starts[d] = i;
  w.shape[d] = 1;
  return sliced(t, w.starts, w.steps, w.shape).reshape(t.shape.filter((_, k) => k !== d));
}

function checkIndexTensor(op: string, idx: unknown): Tensor {
  if (!(idx instanceof Tensor)) throw new WgtorchError(`${op}: expected the index to be a Tensor, got ${typeof idx}. Fix: torch.tensor([...], { dtype: 'int32' }).`);
  if (idx.dtype !== 'int32') {
    throw new WgtorchError(
      `${op}: expected an int32 index tensor, got dtype ${idx.dtype} (shape ${fmtShape(idx.shape)}). Fix: convert it with .int()${idx.dtype === 'bool' ? ' (boolean masks are not supported as indices: use maskedFill or where)' : ''}.`,
    );
  }
  return idx;
}

/**
 * The index values, checked against the dim they index on every device and mode (an op: at
 * once on the cpu, from the device's flags at the next readback on webgpu, inside compiled
 * graphs), with PyTorch's words. Use the returned tensor, so a compiled graph keeps the check.
 */
function checked(op: string, idx: Tensor, dim: number, size: number, negatives: boolean): Tensor {
  return checkIndex(idx, {
    op, what: 'index', lo: negatives ? -size : 0, hi: size, bounds: `for dimension ${dim} with size ${size}`,
    fix: `indices into dim ${dim} must lie in [${negatives ? -size : 0}, ${size})${negatives ? ' (negative ones count from the end)' : ''}.`,
  });
}

export function gather(t: Tensor, dim: number, index: Tensor): Tensor {
  const idx = checkIndexTensor('gather', index);
  const d = normalizeDim('gather', dim, t.dim());
  if (idx.dim() !== t.dim()) {
    throw new WgtorchError(`gather: index tensor must have the same number of dimensions as input tensor (index ${fmtShape(idx.shape)}, input ${fmtShape(t.shape)}). Fix: unsqueeze or reshape the index.`);
  }
  if (t.dim() === 0) return apply('gather', [t.reshape([1]), checked('gather', idx, 0, 1, false).reshape([1])], { dim: 0 }).reshape([]);
  if (idx.numel() === 0) return apply('gather', [t, idx], { dim: d });
  return apply('gather', [t, checked('gather', idx, d, t.shape[d], false)], { dim: d });
}

export function indexSelect(t: Tensor, dim: number, index: Tensor): Tensor {
  const idx = checkIndexTensor('indexSelect', index);
  if (idx.dim() > 1) throw new WgtorchError(`indexSelect: index should have at most 1 dimension, got shape ${fmtShape(idx.shape)}. Fix: flatten it, or use t.index(X) for an index of any shape.`);
  if (t.dim() === 0) return gather(t, 0, idx.reshape([]));
  const d = normalizeDim('indexSelect', dim, t.dim());
  return selectRows(t, d, idx.numel() ? checked('indexSelect', idx, d, t.shape[d], false) : idx);
}

/** indexSelect without the value check (the caller checked the index). */
function selectRows(t: Tensor, d: number, idx: Tensor): Tensor {
  const n = idx.numel();
  const at = t.shape.map((s, k) => (k === d ? n : 1));
  const full = t.shape.map((s, k) => (k === d ? n : s));
  return apply('gather', [t, idx.reshape(at).expand(full)], { dim: d });
}

/** t.index(...items): PyTorch's t[items] (numbers select, null is ':', slices, int32 tensors). */
export function index(t: Tensor, items: IndexItem[]): Tensor {
  const consumed = items.filter((x) => x !== undefined).length;
  if (consumed > t.dim()) {
    throw new WgtorchError(`index: too many indices for tensor of dimension ${t.dim()} (got ${consumed} items for shape ${fmtShape(t.shape)}).`);
  }
  // 1. numbers and slices: one strided slice, then the selected dims dropped
  const w = wholeShape(t);
  const keep: boolean[] = t.shape.map(() => true);
  const tensors: { pos: number; idx: Tensor }[] = [];
  items.forEach((it, d) => {
    const size = t.shape[d];
    if (it === null || it === undefined) return;
    if (typeof it === 'number') {
      checkInt('index', 'an index', it);
      if (it < -size || it >= size) {
        throw new WgtorchError(`index: index ${it} is out of bounds for dimension ${d} with size ${size} (shape ${fmtShape(t.shape)}). Fix: use -${size} <= index < ${size}.`);
      }
      w.starts[d] = it < 0 ? it + size : it;
      w.shape[d] = 1;
      keep[d] = false;
    } else if (it instanceof Slice) {
      const [start, count] = sliceRange(it, size);
      w.starts[d] = count === 0 ? 0 : start;
      w.steps[d] = it.step ?? 1;
      w.shape[d] = count;
    } else if (it instanceof Tensor) {
      tensors.push({ pos: d, idx: checkIndexTensor('index', it) });
    } else {
      throw new WgtorchError(`index: item ${d} is not an index (got ${typeof it}). Fix: use a number, null, torch.slice(start, stop, step) or an int32 tensor.`);
    }
  });
  let r = sliced(t, w.starts, w.steps, w.shape);
  const kept = t.shape.map((_, d) => d).filter((d) => keep[d]);
  if (kept.length !== t.dim()) r = r.reshape(kept.map((d) => r.shape[d]));
  if (!tensors.length) return r;
  // 2. int32 tensors: their dims (positions after the selects) become the broadcast index shape
  const pos = tensors.map(({ pos: p }) => kept.indexOf(p));
  const sizes = pos.map((p) => r.shape[p]);
  const bshape = broadcastShapes('index', ...tensors.map((x) => x.idx.shape));
  // negative indices count from the end; the linear index over the indexed dims
  const inner = stridesOf(sizes);
  let L: Tensor | null = null;
  tensors.forEach(({ idx, pos: p }, k) => {
    const ok = idx.numel() ? checked('index', idx, p, sizes[k], true) : idx;
    const wrapped = ok.add(ok.lt(0).int().mul(sizes[k]));
    const term = inner[k] === 1 ? wrapped : wrapped.mul(inner[k]);
    L = L ? (L as Tensor).add(term) : term;
  });
  L = L! as Tensor;
  if (L.shape.length !== bshape.length || L.shape.some((s, i) => s !== bshape[i])) L = L.expand(bshape);
  const rest = r.shape.map((_, d) => d).filter((d) => !pos.includes(d));
  const moved = r.permute([...pos, ...rest]).reshape([numel(sizes), ...rest.map((d) => r.shape[d])]);
  const picked = selectRows(moved, 0, L.reshape([-1])).reshape([...bshape, ...rest.map((d) => r.shape[d])]);
  // adjacent tensor items put the index dims where they stood; otherwise they lead (NumPy's rule)
  const adjacent = pos.every((p, k) => k === 0 || p === pos[k - 1] + 1);
  const first = Math.min(...pos);
  if (!adjacent || first === 0) return picked;
  const nb = bshape.length;
  const before = rest.filter((d) => d < first).length;
  const order = [...Array(before).keys()].map((i) => nb + i);
  return picked.permute([...order, ...[...Array(nb).keys()], ...[...Array(rest.length - before).keys()].map((i) => nb + before + i)]);
}

export function split(t: Tensor, sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
  const d = normalizeDim('split', dim, t.dim());
  const size = t.shape[d];
  let sizes: number[];
  if (typeof sizeOrSizes === 'number') {
    checkInt('split', 'split_size', sizeOrSizes);
    if (sizeOrSizes <= 0 && !(sizeOrSizes === 0 && size === 0)) {
      throw new WgtorchError(`split: split_size can only be 0 if dimension size is 0, but got split_size ${sizeOrSizes} for dim ${d} of size ${size} (shape ${fmtShape(t.shape)}). Fix: pass a positive size.`);
    }
    sizes = [];
    for (let at = 0; at < size; at += sizeOrSizes) sizes.push(Math.min(sizeOrSizes, size - at));
    if (!sizes.length) sizes = [0];
  } else {
    sizes = [...sizeOrSizes];
    sizes.forEach((s) => checkInt('split', 'a split size', s));
    const total = sizes.reduce((p, s) => p + s, 0);
    if (total !== size || sizes.some((s) => s < 0)) {
      throw new WgtorchError(
        `split: split_with_sizes expects split_sizes to sum exactly to ${size} (input tensor's size at dimension ${d}), but got split_sizes=${fmtShape(sizes)} (shape ${fmtShape(t.shape)}). Fix: make the sizes add up to ${size}.`,
      );
    }
  }
  let at = 0;
  return sizes.map((s) => {
    const r = narrow(t, d, at, s);
    at += s;
    return r;
  });
}

export function chunk(t: Tensor, chunks: number, dim = 0): Tensor[] {
  checkInt('chunk', 'chunks', chunks);
  if (chunks <= 0) throw new WgtorchError(`chunk: chunk expects \`chunks\` to be greater than 0, got: ${chunks}.`);
  const d = normalizeDim('chunk', dim, t.dim());
  const size = t.shape[d];
  return split(t, Math.max(1, Math.ceil(size / chunks)), d);
}

function checkList(op: string, tensors: readonly Tensor[]): void {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new WgtorchError(`${op}: expected a non-empty list of Tensors. Fix: torch.${op}([a, b], dim).`);
  tensors.forEach((x, i) => {
    if (!(x instanceof Tensor)) throw new WgtorchError(`${op}: expected a list of Tensors, but element ${i} is ${typeof x}.`);
  });
}

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  checkList('cat', tensors);
  // PyTorch skips 1-D empty tensors in cat (a legacy rule that keeps torch.cat([empty, x]) working)
  const parts = tensors.filter((x) => !(x.dim() === 1 && x.shape[0] === 0));
  if (!parts.length) return tensors[0];
  const ref = parts[0];
  if (ref.dim() === 0) throw new WgtorchError('cat: zero-dimensional tensor (at position 0) cannot be concatenated. Fix: unsqueeze(0) them, or use torch.stack.');
  const d = normalizeDim('cat', dim, ref.dim());
  parts.forEach((x, i) => {
    if (x.dim() !== ref.dim() || x.shape.some((s, k) => k !== d && s !== ref.shape[k])) {
      throw new WgtorchError(
        `cat: sizes of tensors must match except in dimension ${d}. Expected ${fmtShape(ref.shape)} (but any size at dim ${d}), got ${fmtShape(x.shape)} for tensor number ${i} in the list. Fix: reshape or slice the tensors to agree off dim ${d}.`,
      );
    }
    if (x.dtype !== ref.dtype) throw new WgtorchError(`cat: expected all tensors to have dtype ${ref.dtype}, got ${x.dtype} for tensor number ${i}. Fix: convert them with .float() or .int().`);
  });
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((p, x) => p + x.shape[d], 0);
  const shape = ref.shape.map((s, k) => (k === d ? total : s));
  // each part written over its range of the result, in turn: exact for every dtype (no sums),
  // and each part's gradient is a slice of the result's
  let at = 0;
  let out = apply('full', [], { shape, value: 0, dtype: ref.dtype }, ref.device);
  for (const x of parts) {
    const starts = shape.map((_, k) => (k === d ? at : 0));
    at += x.shape[d];
    if (x.shape[d] > 0) out = apply('sliceScatter', [out, x], { starts, steps: shape.map(() => 1) });
  }
  return out;
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  checkList('stack', tensors);
  const ref = tensors[0];
  tensors.forEach((x, i) => {
    if (x.dim() !== ref.dim() || x.shape.some((s, k) => s !== ref.shape[k])) {
      throw new WgtorchError(`stack: stack expects each tensor to be equal size, but got ${fmtShape(ref.shape)} at entry 0 and ${fmtShape(x.shape)} at entry ${i}. Fix: give all tensors one shape.`);
    }
  });
  const d = normalizeDim('stack', dim, ref.dim() + 1);
  return cat(tensors.map((x) => x.unsqueeze(d)), d);
}

/** tril / triu: a mask over the last two dims from two aranges (cheap, fused when compiled). */
function triangle(op: 'tril' | 'triu', t: Tensor, diagonal: number): Tensor {
  if (!(t instanceof Tensor)) throw new WgtorchError(`${op}: expected a Tensor, got ${typeof t}.`);
  if (t.dim() < 2) throw new WgtorchError(`${op}: input tensor must have at least 2 dimensions, got shape ${fmtShape(t.shape)}. Fix: reshape a vector to [1, n] or [n, 1].`);
  checkInt(op, 'diagonal', diagonal);
  const [rows, cols] = t.shape.slice(-2);
  const r = apply('arange', [], { start: 0, step: 1, n: rows, dtype: 'int32' }, t.device).reshape([rows, 1]);
  const c = apply('arange', [], { start: -diagonal, step: 1, n: cols, dtype: 'int32' }, t.device).reshape([1, cols]);
  // keep col - row <= diagonal (tril) or >= diagonal (triu)
  const keepMask = op === 'tril' ? c.le(r) : c.ge(r);
  return t.where(keepMask, 0);
}
export const tril = (t: Tensor, diagonal = 0) => triangle('tril', t, diagonal);
export const triu = (t: Tensor, diagonal = 0) => triangle('triu', t, diagonal);
