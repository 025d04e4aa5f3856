/** torch.utils.data: TensorDataset and DataLoader (batches, shuffling by manualSeed, dropLast, collate). */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';

const { TensorDataset, DataLoader } = torch.utils.data;
const vals = (t: torch.Tensor) => Array.from(t.toArraySync() as ArrayLike<number>);

describe('TensorDataset and DataLoader', () => {
  const x = torch.arange(10).float().reshape(5, 2); // row i = [2i, 2i+1]
  const y = torch.tensor([0, 1, 2, 3, 4], { dtype: 'int32' });

  it('TensorDataset: rows of each tensor, length of dim 0', () => {
    const ds = new TensorDataset(x, y);
    expect(ds.length).toBe(5);
    const [xi, yi] = ds.get(3);
    expect(xi.shape).toEqual([2]);
    expect(vals(xi)).toEqual([6, 7]);
    expect(yi.shape).toEqual([]);
    expect(yi.dtype).toBe('int32');
    expect(vals(ds.get(-1)[1])).toEqual([4]);
    expect(() => ds.get(5)).toThrow(/index 5 is out of range for 5 samples/);
    expect(() => new TensorDataset(x, torch.zeros(4))).toThrow(/size mismatch between tensors: first dims 5, 4/);
  });

  it('batches in order, the last one short unless dropLast', () => {
    const loader = new DataLoader(new TensorDataset(x, y), { batchSize: 2 });
    expect(loader.length).toBe(3);
    const batches = [...loader];
    expect(batches.map(([, yb]) => vals(yb))).toEqual([[0, 1], [2, 3], [4]]);
    expect(batches[0][0].shape).toEqual([2, 2]);
    expect(vals(batches[1][0])).toEqual([4, 5, 6, 7]);
    const dropped = new DataLoader(new TensorDataset(x, y), { batchSize: 2, dropLast: true });
    expect([...dropped].map(([, yb]) => vals(yb))).toEqual([[0, 1], [2, 3]]);
    expect(dropped.length).toBe(2);
    expect([...new DataLoader(new TensorDataset(x, y))]).toHaveLength(5);
  });

  it('shuffle: a permutation per pass, the same for the same manualSeed, rows kept together', () => {
    const loader = new DataLoader(new TensorDataset(x, y), { batchSize: 5, shuffle: true });
    const order = () => {
      const [[xb, yb]] = [...loader];
      const ys = vals(yb);
      // x rows follow their labels
      expect(vals(xb)).toEqual(ys.flatMap((i) => [2 * i, 2 * i + 1]));
      return ys;
    };
    torch.manualSeed(7);
    const a = order();
    const b = order();
    torch.manualSeed(7);
    expect(order()).toEqual(a);
    expect([...a].sort()).toEqual([0, 1, 2, 3, 4]);
    // two passes differ (with this seed), as each epoch reshuffles
    expect(b).not.toEqual(a);
  });

  it('a dataset of its own: get(i) samples collated by stacking', () => {
    const squares = { length: 3, get: (i: number) => [torch.tensor([i, i * i]), torch.tensor(i % 2, { dtype: 'int32' })] };
    const [[xb, yb]] = [...new DataLoader(squares, { batchSize: 3 })];
    expect(xb.shape).toEqual([3, 2]);
    expect(vals(xb)).toEqual([0, 0, 1, 1, 2, 4]);
    expect(vals(yb)).toEqual([0, 1, 0]);
  });

  it('bad options name the option and the fix', () => {
    const ds = new TensorDataset(x);
    expect(() => new DataLoader(ds, { batchSize: 0 })).toThrow(/batchSize should be a positive integer, got 0/);
    expect(() => new DataLoader(ds, { batch_size: 2 } as never)).toThrow(/unknown option 'batch_size'. Fix: use one of 'batchSize'/);
    expect(() => new DataLoader({} as never)).toThrow(/the dataset needs a length and get\(i\)/);
  });
});
