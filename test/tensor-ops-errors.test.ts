/**
 * The ops beyond the seed refuse bad shapes, dims and indices with PyTorch's messages
 * (the op, the shapes, the fix), and leave the user's tensors as they were.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { expectThrowsUnchanged } from './helpers/snapshot.ts';

const i32 = (v: number[] | number[][]) => torch.tensor(v, { dtype: 'int32' });

describe('index values out of range', () => {
  it('raise on cpu with the dim and the size, as PyTorch does', () => {
    const C = torch.randn(10, 3, { requiresGrad: true });
    const X = i32([1, 12, 3]);
    expectThrowsUnchanged(() => C.index(X), ['index 12 is out of bounds for dimension 0 with size 10'], [C, X]);
    expectThrowsUnchanged(() => C.index(null, i32([3])), ['index 3 is out of bounds for dimension 1 with size 3'], [C]);
    expectThrowsUnchanged(() => C.index(i32([-11])), ['index -11 is out of bounds for dimension 0 with size 10'], [C]);
    expectThrowsUnchanged(() => C.indexSelect(0, i32([12])), ['index 12 is out of bounds for dimension 0 with size 10'], [C]);
    expectThrowsUnchanged(() => C.gather(1, i32([[0], [5]])), ['index 5 is out of bounds for dimension 1 with size 3'], [C]);
    expectThrowsUnchanged(() => C.gather(0, i32([[-1]])), ['index -1 is out of bounds for dimension 0 with size 10'], [C]);
    expectThrowsUnchanged(() => C.index(12), ['index 12 is out of bounds for dimension 0 with size 10'], [C]);
    expectThrowsUnchanged(() => C.select(1, 3), ['select', 'index 3 is out of bounds for dimension 1 with size 3', '[10, 3]', 'Fix'], [C]);
  });

  it('negative indices of a tensor index count from the end (PyTorch), gather takes none', async () => {
    const E = torch.arange(12).float().reshape(4, 3);
    expect(await E.index(i32([-1, 0])).tolist()).toEqual([[9, 10, 11], [0, 1, 2]]);
    expect(await E.index(-1, -2).item()).toBe(10);
  });

  it('an index out of range under torch.compile on cpu raises the same error', () => {
    const C = torch.randn(10, 3);
    const f = torch.compile((c: torch.Tensor, x: torch.Tensor) => c.indexSelect(0, x).sum());
    expect(() => f(C, i32([1, 12]))).toThrow('index 12 is out of bounds for dimension 0 with size 10');
  });

  it.runIf(webgpuAvailable)('raise on webgpu too: at once from host data, else at the next readback; eager and compiled', async () => {
    const C = torch.randn(10, 3).to('webgpu');
    const X = i32([1, 12, 3]).to('webgpu');
    expect(() => C.index(X)).toThrow('index 12 is out of bounds for dimension 0 with size 10');
    const f = torch.compile((c: torch.Tensor, x: torch.Tensor) => c.index(x).sum());
    expect(() => f(C, X)).toThrow('index 12 is out of bounds for dimension 0 with size 10');
    // computed on the device: the values are unknown until the GPU has run
    const onDevice = i32([1, 2, 3]).to('webgpu').add(i32([0, 10, 0]).to('webgpu'));
    await expect(C.gather(0, onDevice.unsqueeze(1)).sum().item()).rejects.toThrow('index 12 is out of bounds for dimension 0 with size 10');
    await expect(f(C, i32([0, 1, 1]).to('webgpu').mul(13)).item()).rejects.toThrow('index values (from 13 to 13) are out of bounds for dimension 0 with size 10');
  });
});

describe('bad dims and sizes', () => {
  const A = torch.randn(3, 4, { requiresGrad: true });
  it('narrow, select, split, chunk', () => {
    expectThrowsUnchanged(() => A.narrow(1, 3, 2), ['narrow', 'start (3) + length (2) exceeds dimension size (4)', '[3, 4]', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.narrow(2, 0, 1), ['narrow', 'dimension out of range (expected to be in range of [-2, 1], but got 2)'], [A]);
    expectThrowsUnchanged(() => A.narrow(0, 5, 0), ['narrow', 'start (5) is out of range', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.select(-3, 0), ['select', 'dimension out of range'], [A]);
    expectThrowsUnchanged(() => A.split([1, 1], 1), ['split', 'split_sizes to sum exactly to 4', '[1, 1]', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.split(0), ['split', 'split_size can only be 0 if dimension size is 0', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.chunk(0), ['chunk', 'greater than 0'], [A]);
  });

  it('index: too many items, a bad item, a zero or negative step, a float or bool index', () => {
    expectThrowsUnchanged(() => A.index(0, 1, 2), ['index', 'too many indices for tensor of dimension 2', '[3, 4]'], [A]);
    expectThrowsUnchanged(() => A.index(torch.slice(null, null, -1)), ['index', 'step must be greater than zero'], [A]);
    expectThrowsUnchanged(() => A.index(torch.slice(null, null, 0)), ['step must be greater than zero'], [A]);
    expectThrowsUnchanged(() => A.index(torch.tensor([0, 1])), ['index', 'int32 index tensor', 'float32', 'Fix', '.int()'], [A]);
    expectThrowsUnchanged(() => A.index(A.gt(0)), ['index', 'bool', 'maskedFill'], [A]);
    expectThrowsUnchanged(() => A.index('x' as never), ['index', 'torch.slice'], [A]);
  });

  it('gather and indexSelect', () => {
    expectThrowsUnchanged(() => A.gather(1, i32([0, 1])), ['gather', 'same number of dimensions', '[2]', '[3, 4]', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.gather(1, i32([[0], [1], [2], [0]])), ['gather', 'size of index [4, 1] at dim 0 (4) is larger than that of the input [3, 4] (3)', 'Fix'], [A]);
    expectThrowsUnchanged(() => A.gather(2, i32([[0]])), ['gather', 'dimension out of range'], [A]);
    expectThrowsUnchanged(() => A.indexSelect(0, i32([[0]])), ['indexSelect', 'at most 1 dimension', '[1, 1]', 'Fix'], [A]);
  });

  it('cat and stack', () => {
    const B = torch.randn(2, 3);
    expectThrowsUnchanged(() => torch.cat([A, B], 0), ['cat', 'sizes of tensors must match except in dimension 0', '[3, 4]', '[2, 3]', 'tensor number 1', 'Fix'], [A, B]);
    expectThrowsUnchanged(() => torch.cat([A, A], 2), ['cat', 'dimension out of range'], [A]);
    expectThrowsUnchanged(() => torch.cat([]), ['cat', 'non-empty list'], []);
    expectThrowsUnchanged(() => torch.cat([A, A.int()], 0), ['cat', 'dtype float32', 'int32', 'Fix'], [A]);
    expectThrowsUnchanged(() => torch.stack([A, B]), ['stack', 'stack expects each tensor to be equal size', '[3, 4]', '[2, 3]', 'Fix'], [A, B]);
  });

  it('bmm, matmul batch dims, tril', () => {
    const a = torch.randn(2, 3, 4);
    expectThrowsUnchanged(() => torch.bmm(a, torch.randn(4, 5)), ['bmm', 'batch2 must be a 3D tensor', '[2, 3, 4]', '[4, 5]', 'matmul'], [a]);
    expectThrowsUnchanged(() => a.bmm(torch.randn(3, 4, 5)), ['bmm', 'same batch size', '[2, 3, 4]', '[3, 4, 5]', 'Fix'], [a]);
    expectThrowsUnchanged(() => a.bmm(torch.randn(2, 5, 5)), ['bmm', 'Expected size for first two dimensions of batch2 tensor to be: [2, 4] but got: [2, 5]', 'Fix'], [a]);
    expectThrowsUnchanged(() => a.matmul(torch.randn(3, 4, 5)), ['matmul', 'must match the size', '[2]', '[3]'], [a]);
    expectThrowsUnchanged(() => torch.tril(torch.randn(4)), ['tril', 'at least 2 dimensions', '[4]', 'Fix'], []);
  });

  it('var, gelu, pow, multinomial options', () => {
    expectThrowsUnchanged(() => A.var({ corection: 0 } as never), ['var', "unknown option 'corection'"], [A]);
    expectThrowsUnchanged(() => A.var(2), ['var', 'dimension out of range'], [A]);
    expectThrowsUnchanged(() => A.gelu({ approximate: 'fast' as never }), ['gelu', "'none' or 'tanh'"], [A]);
    expectThrowsUnchanged(() => A.pow('2' as never), ['pow', 'number or a Tensor'], [A]);
    const p = torch.tensor([0.2, 0.8]);
    expectThrowsUnchanged(() => torch.multinomial(p, 3), ['multinomial', 'cannot sample n_sample > prob_dist.size(-1) samples without replacement', 'replacement: true'], [p]);
    expectThrowsUnchanged(() => torch.multinomial(torch.tensor([0.2, -1]), 1), ['multinomial', 'element < 0'], []);
    expectThrowsUnchanged(() => torch.multinomial(torch.zeros(3), 1), ['multinomial', 'sum of probabilities <= 0'], []);
  });
});
