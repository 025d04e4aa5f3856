/** torch.utils.data datasets: anything with a length and get(i); TensorDataset over tensors' first dim. */
import { tensor } from '../eager/factories.ts';
import { stack } from '../eager/ops.ts';
import { Tensor } from '../eager/tensor.ts';
import { hostArray } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';

export interface Dataset<T = unknown> {
  readonly length: number;
  get(index: number): T;
}

/** A dataset that can hand out many items at once (a batch), faster than get() one by one. */
export interface BatchedDataset<T = unknown> extends Dataset<T> {
  getBatch(indices: readonly number[]): T;
}

/** Samples are rows of each tensor along dim 0: `ds.get(i)` is `[x[i], y[i]]`. */
export class TensorDataset implements BatchedDataset<Tensor[]> {
  readonly tensors: Tensor[];
  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw new WgtorchError('TensorDataset: give at least one tensor, e.g. new TensorDataset(x, y).');
    for (const t of tensors) {
      if (!(t instanceof Tensor)) throw new WgtorchError(`TensorDataset: expected tensors, got ${typeof t}.`);
      if (t.dim() === 0) throw new WgtorchError('TensorDataset: tensors need a first dimension to index (got a 0-d tensor).');
    }
    const n = tensors[0].shape[0];
    const bad = tensors.find((t) => t.shape[0] !== n);
    if (bad) {
      throw new WgtorchError(
        `TensorDataset: size mismatch between tensors: first dims ${tensors.map((t) => t.shape[0]).join(', ')} (shapes ${tensors.map((t) => fmtShape(t.shape)).join(', ')}). Fix: every tensor needs one row per sample.`,
      );
    }
    this.tensors = tensors;
  }
  get length(): number {
    return this.tensors[0].shape[0];
  }
  get(index: number): Tensor[] {
    const n = this.length;
    const i = index < 0 ? index + n : index;
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new WgtorchError(`TensorDataset: index ${index} is out of range for ${n} samples.`);
    return this.tensors.map((t) => rows(t, [i]).reshape(t.shape.slice(1)));
  }
  getBatch(indices: readonly number[]): Tensor[] {
    return this.tensors.map((t) => rows(t, indices));
  }
}

/** Rows of t (along dim 0) as a new tensor on t's device; cpu rows are copied on the host. */
export function rows(t: Tensor, indices: readonly number[]): Tensor {
  const n = t.shape[0];
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new WgtorchError(`TensorDataset: index ${i} is out of range for ${n} samples.`);
  }
  // a dataset already on a GPU is gathered there
  if (t.device !== 'cpu') return t.indexSelect(0, tensor(Int32Array.from(indices), { dtype: 'int32', device: t.device }));
  const row = t.numel() / Math.max(n, 1);
  const src = t.toArraySync();
  const out = hostArray(t.dtype, indices.length * row);
  indices.forEach((i, k) => out.set(src.subarray(i * row, (i + 1) * row) as never, k * row));
  return tensor(out, { shape: [indices.length, ...t.shape.slice(1)], dtype: t.dtype, device: 'cpu' });
}

/** Stacks cpu tensors of one shape along a new dim 0 (the default collate of a batch). */
export function stackRows(items: Tensor[]): Tensor {
  const first = items[0];
  if (items.every((t) => t.device !== 'cpu' && t.device === first.device)) return stack(items, 0);
  for (const t of items) {
    if (t.device !== 'cpu' || t.dtype !== first.dtype || fmtShape(t.shape) !== fmtShape(first.shape)) {
      throw new WgtorchError(
        `DataLoader: cannot collate samples of shapes ${fmtShape(first.shape)} and ${fmtShape(t.shape)} (${first.dtype} on ${first.device}, ${t.dtype} on ${t.device}). Fix: a dataset's get(i) returns cpu tensors of one shape and dtype.`,
      );
    }
  }
  const row = first.numel();
  const out = hostArray(first.dtype, items.length * row);
  items.forEach((t, k) => out.set(t.toArraySync() as never, k * row));
  return tensor(out, { shape: [items.length, ...first.shape], dtype: first.dtype, device: 'cpu' });
}
