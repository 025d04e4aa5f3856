/**
 * DataLoader: batches of a dataset, in order or shuffled by the global generator (so
 * manualSeed makes the order reproducible). Iterate with `for (const [x, y] of loader)`.
 */
import { checkOptions } from '../eager/options.ts';
import { randomInt } from '../eager/random.ts';
import { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { stackRows, type BatchedDataset, type Dataset } from './dataset.ts';

export interface DataLoaderOptions {
  batchSize?: number;
  shuffle?: boolean;
  dropLast?: boolean;
}

type Batch<T> = T extends Tensor[] ? Tensor[] : T extends Tensor ? Tensor : T[];

export class DataLoader<T = Tensor[]> implements Iterable<Batch<T>> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  constructor(
    readonly dataset: Dataset<T>,
    opts: DataLoaderOptions = {},
  ) {
    checkOptions('DataLoader', opts, ['batchSize', 'shuffle', 'dropLast']);
    if (!dataset || typeof dataset.length !== 'number' || typeof dataset.get !== 'function') {
      throw new WgtorchError('DataLoader: the dataset needs a length and get(i) (e.g. new torch.utils.data.TensorDataset(x, y)).');
    }
    this.batchSize = opts.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize <= 0) {
      throw new WgtorchError(`DataLoader: batchSize should be a positive integer, got ${String(opts.batchSize)}.`);
    }
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
  }

  /** The number of batches per pass. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  *[Symbol.iterator](): Iterator<Batch<T>> {
    const n = this.dataset.length;
    const order = Array.from({ length: n }, (_, i) => i);
    if (this.shuffle) {
      for (let i = n - 1; i > 0; i--) {
        const j = randomInt(0, i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
    }
    for (let b = 0; b < this.length; b++) {
      const idx = order.slice(b * this.batchSize, (b + 1) * this.batchSize);
      yield this.fetch(idx);
    }
  }

  private fetch(idx: number[]): Batch<T> {
    const ds = this.dataset as Dataset<T> & Partial<BatchedDataset<T>>;
    if (typeof ds.getBatch === 'function') return ds.getBatch(idx) as Batch<T>;
    return collate(idx.map((i) => ds.get(i))) as Batch<T>;
  }
}

/** PyTorch's default collate: tensors stack along a new dim 0, tuples collate field by field. */
function collate(items: unknown[]): unknown {
  const first = items[0];
  if (first instanceof Tensor) return stackRows(items as Tensor[]);
  if (Array.isArray(first)) return first.map((_, k) => collate(items.map((it) => (it as unknown[])[k])));
  if (typeof first === 'number') return items;
  return items;
}
