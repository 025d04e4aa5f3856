/** Tensors: factories, seeds, dtypes, views, shape ops, reductions and reading values. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';

/** torch.stack for this test only (built from the values: no stack op is needed). */
const stack = (ts: torch.Tensor[]) => torch.tensor(ts.map((t) => t.tolistSync()) as number[][][]);
const vals = (t: torch.Tensor) => Array.from(t.toArraySync() as ArrayLike<number>);
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-6) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[i]), `element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

describe('factories', () => {
  it('sizes as varargs or one array, options last', () => {
    for (const t of [torch.zeros(2, 3), torch.zeros([2, 3]), torch.ones(2, 3, { requiresGrad: true }), torch.randn([2, 3], { dtype: 'float32' })]) {
      expect(t.shape).toEqual([2, 3]);
      expect(t.dtype).toBe('float32');
      expect(t.device).toBe('cpu');
      expect(t.numel()).toBe(6);
      expect(t.dim()).toBe(2);
    }
    expect(vals(torch.zeros(2, 3))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(vals(torch.ones([3]))).toEqual([1, 1, 1]);
    expect(torch.ones(2, { requiresGrad: true }).requiresGrad).toBe(true);
    expect(torch.zeros(2).requiresGrad).toBe(false);
    expect(torch.zeros(3, { dtype: 'int32' }).dtype).toBe('int32');
    expect(vals(torch.full([2, 2], 7.5))).toEqual([7.5, 7.5, 7.5, 7.5]);
    expect(torch.zeros().shape).toEqual([]);
    expect(torch.zeros().numel()).toBe(1);
    expect(torch.zeros(0, 3).numel()).toBe(0);
    expect(torch.rand(4, 5).shape).toEqual([4, 5]);
  });

  it('*Like factories copy shape, dtype and device', () => {
    const x = torch.randn(3, 2);
    const i = torch.zeros(4, { dtype: 'int32' });
    expect(vals(torch.zerosLike(x))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(vals(torch.onesLike(x))).toEqual([1, 1, 1, 1, 1, 1]);
    expect(torch.onesLike(i).dtype).toBe('int32');
    expect(torch.randnLike(x).shape).toEqual([3, 2]);
    expect(torch.zerosLike(x, { requiresGrad: true }).requiresGrad).toBe(true);
  });

  it('tensor() from nested arrays, a number, and a Float32Array with { shape }', () => {
    const a = torch.tensor([[1, 2, 3], [4, 5, 6]]);
    expect(a.shape).toEqual([2, 3]);
    expect(a.dtype).toBe('float32');
    expect(vals(a)).toEqual([1, 2, 3, 4, 5, 6]);
    const s = torch.tensor(3.5);
    expect(s.shape).toEqual([]);
    expect(s.itemSync()).toBe(3.5);
    const f = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [3, 2] });
    expect(f.shape).toEqual([3, 2]);
    expect(f.tolistSync()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(torch.tensor(new Float32Array([1, 2])).shape).toEqual([2]);
    expect(torch.tensor([1, 2, 3], { shape: [3, 1] }).shape).toEqual([3, 1]);
    const t = torch.tensor([0, 2, 1], { dtype: 'int32' });
    expect(t.dtype).toBe('int32');
    expect(vals(t)).toEqual([0, 2, 1]);
    expect(torch.tensor(new Int32Array([4, 5])).dtype).toBe('int32');
    expect(torch.tensor([[[1], [2]]]).shape).toEqual([1, 2, 1]);
    expect(torch.tensor([1, 2], { requiresGrad: true }).requiresGrad).toBe(true);
  });

  it('tensor() copies its data: changing the source array later changes nothing', () => {
    const src = new Float32Array([1, 2, 3]);
    const t = torch.tensor(src);
    src[0] = 100;
    expect(vals(t)).toEqual([1, 2, 3]);
  });

  it('manualSeed makes rand, randn and randint deterministic', () => {
    const draw = () => [vals(torch.rand(5)), vals(torch.randn(2, 3)), vals(torch.randint(0, 10, [6])), vals(torch.randnLike(torch.zeros(4)))];
    torch.manualSeed(42);
    const a = draw();
    torch.manualSeed(42);
    const b = draw();
    expect(b).toEqual(a);
    torch.manualSeed(43);
    expect(draw()[1]).not.toEqual(a[1]);
    // ranges
    torch.manualSeed(7);
    const u = vals(torch.rand(2000));
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    const ri = torch.randint(3, 8, [2000]);
    expect(ri.dtype).toBe('int32');
    const r = vals(ri);
    expect(Math.min(...r)).toBe(3);
    expect(Math.max(...r)).toBe(7);
    const n = vals(torch.randn(4000));
    const mean = n.reduce((p, v) => p + v, 0) / n.length;
    const sd = Math.sqrt(n.reduce((p, v) => p + (v - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean)).toBeLessThan(0.08);
    expect(Math.abs(sd - 1)).toBeLessThan(0.05);
  });

  it('arange forms', () => {
    const a = torch.arange(5);
    expect(a.dtype).toBe('int32');
    expect(vals(a)).toEqual([0, 1, 2, 3, 4]);
    expect(vals(torch.arange(2, 6))).toEqual([2, 3, 4, 5]);
    expect(vals(torch.arange(1, 10, 3))).toEqual([1, 4, 7]);
    expect(vals(torch.arange(5, 0, -2))).toEqual([5, 3, 1]);
    const f = torch.arange(0, 1, 0.25);
    expect(f.dtype).toBe('float32');
    expect(vals(f)).toEqual([0, 0.25, 0.5, 0.75]);
    expect(torch.arange(4, { dtype: 'float32' }).dtype).toBe('float32');
    expect(torch.arange(0).shape).toEqual([0]);
  });
});

describe('dtypes', () => {
  it('comparisons give bool, class targets are int32, promotion goes to float', () => {
    const x = torch.tensor([1, 2, 3]);
    for (const m of [x.lt(2), x.le(2), x.gt(2), x.ge(2), x.eq(2), x.ne(2), torch.lt(x, 2)]) expect(m.dtype).toBe('bool');
    expect(vals(x.lt(2))).toEqual([1, 0, 0]);
    expect(vals(x.le(2))).toEqual([1, 1, 0]);
    expect(vals(x.gt(2))).toEqual([0, 0, 1]);
    expect(vals(x.ge(2))).toEqual([0, 1, 1]);
    expect(vals(x.eq(2))).toEqual([0, 1, 0]);
    expect(vals(x.ne(2))).toEqual([1, 0, 1]);
    expect(vals(x.lt(torch.tensor([3, 2, 1])))).toEqual([1, 0, 0]);
    const i = torch.tensor([1, 2], { dtype: 'int32' });
    expect(i.add(1).dtype).toBe('int32');
    expect(i.add(0.5).dtype).toBe('float32');
    expect(vals(i.add(0.5))).toEqual([1.5, 2.5]);
    expect(i.add(torch.ones(2)).dtype).toBe('float32');
    expect(i.div(2).dtype).toBe('float32');
    expect(vals(i.div(2))).toEqual([0.5, 1]);
    expect(x.argmax().dtype).toBe('int32');
    expect(x.gt(1).sum().dtype).toBe('int32');
    expect(x.gt(1).sum().itemSync()).toBe(2);
  });

  it('casts: float to int truncates toward zero, to bool is nonzero', () => {
    const x = torch.tensor([-1.7, -0.2, 0, 0.9, 2.5]);
    expect(vals(x.int())).toEqual([-1, 0, 0, 0, 2]);
    expect(vals(x.bool())).toEqual([1, 1, 0, 1, 1]);
    expect(x.int().float().dtype).toBe('float32');
    expect(x.to('int32').dtype).toBe('int32');
  });
});

describe('views and copies', () => {
  it('reshape/view share storage: in-place through a view is visible in the base and vice versa', () => {
    const a = torch.arange(6).float();
    const v = a.view(2, 3);
    const r = a.reshape([3, 2]);
    v.mul_(10);
    expect(vals(a)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(vals(r)).toEqual([0, 10, 20, 30, 40, 50]);
    a.add_(1);
    expect(v.tolistSync()).toEqual([[1, 11, 21], [31, 41, 51]]);
    expect(a.view(-1, 2).shape).toEqual([3, 2]);
  });

  it('clone is independent; detach and .data share storage', () => {
    const a = torch.tensor([1, 2, 3], { requiresGrad: true });
    const c = a.clone();
    const d = a.detach();
    expect(d.requiresGrad).toBe(false);
    expect(c.requiresGrad).toBe(true);
    d.add_(1);
    expect(vals(a)).toEqual([2, 3, 4]);
    expect(vals(c)).toEqual([1, 2, 3]);
    a.data.mul_(2);
    expect(vals(d)).toEqual([4, 6, 8]);
    const e = torch.noGrad(() => a.clone());
    e.zero_();
    expect(vals(a)).toEqual([4, 6, 8]);
    expect(a.contiguous().shape).toEqual([3]);
  });

  it('flatten, unsqueeze, squeeze, transpose, t, permute, expand values', () => {
    const x = torch.arange(6).reshape(2, 3); // [[0,1,2],[3,4,5]]
    expect(x.t().tolistSync()).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(x.transpose(0, 1).tolistSync()).toEqual([[0, 3], [1, 4], [2, 5]]);
    expect(x.transpose(-1, -2).shape).toEqual([3, 2]);
    expect(x.T.shape).toEqual([3, 2]);
    const y = torch.arange(24).reshape(2, 3, 4);
    const p = y.permute(2, 0, 1);
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k, i, j] = y[i, j, k] = 12 i + 4 j + k
    const pl = p.tolistSync() as number[][][];
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) expect(pl[k][i][j]).toBe(12 * i + 4 * j + k);
    expect(y.permute([0, 1, 2])).toBe(y);
    expect(y.flatten().shape).toEqual([24]);
    expect(y.flatten(1).shape).toEqual([2, 12]);
    expect(y.flatten(0, 1).shape).toEqual([6, 4]);
    expect(vals(y.flatten(1))).toEqual(vals(y));
    expect(x.unsqueeze(0).shape).toEqual([1, 2, 3]);
    expect(x.unsqueeze(-1).shape).toEqual([2, 3, 1]);
    expect(x.unsqueeze(1).shape).toEqual([2, 1, 3]);
    const s = torch.zeros(1, 3, 1, 2);
    expect(s.squeeze().shape).toEqual([3, 2]);
    expect(s.squeeze(0).shape).toEqual([3, 1, 2]);
    expect(s.squeeze(1).shape).toEqual([1, 3, 1, 2]);
    expect(s.squeeze(-2).shape).toEqual([1, 3, 2]);
    const e = torch.tensor([[1], [2]]).expand(2, 3);
    expect(e.tolistSync()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(torch.tensor([1, 2]).expand(3, -1).tolistSync()).toEqual([[1, 2], [1, 2], [1, 2]]);
    expect(torch.tensor([1, 2]).expandAs(torch.zeros(2, 2)).shape).toEqual([2, 2]);
    expect(torch.t(x).shape).toEqual([3, 2]);
    expect(torch.reshape(x, [6]).shape).toEqual([6]);
  });

  it('tolist nests like the shape; toArray is a flat copy', async () => {
    const x = torch.arange(24).reshape(2, 3, 4);
    const l = (await x.tolist()) as number[][][];
    expect(l.length).toBe(2);
    expect(l[1].length).toBe(3);
    expect(l[1][2]).toEqual([20, 21, 22, 23]);
    expect(await torch.tensor(5).tolist()).toBe(5);
    const f = torch.tensor([[1.5, 2]]);
    const arr = await f.toArray();
    expect(arr).toBeInstanceOf(Float32Array);
    expect(Array.from(arr)).toEqual([1.5, 2]);
    arr[0] = 99;
    expect(vals(f)).toEqual([1.5, 2]);
    expect(f.toArraySync()).toBeInstanceOf(Float32Array);
    expect(torch.tensor([1, 0]).gt(0).tolistSync()).toEqual([1, 0]);
  });
});

describe('math', () => {
  const a = torch.tensor([[1, -2, 3], [-4, 5, -6]]);
  const av = [1, -2, 3, -4, 5, -6];

  it('elementwise ops, methods and torch.* forms, with broadcasting', () => {
    const b = torch.tensor([10, 20, 30]);
    expect(vals(a.add(b))).toEqual([11, 18, 33, 6, 25, 24]);
    expect(vals(torch.add(a, b))).toEqual([11, 18, 33, 6, 25, 24]);
    expect(vals(a.sub(1))).toEqual(av.map((v) => v - 1));
    expect(vals(a.mul(torch.tensor([[2], [3]])))).toEqual([2, -4, 6, -12, 15, -18]);
    expect(vals(a.div(2))).toEqual(av.map((v) => v / 2));
    expect(vals(a.neg())).toEqual(av.map((v) => -v));
    expect(vals(a.abs())).toEqual(av.map(Math.abs));
    expect(vals(a.relu())).toEqual(av.map((v) => Math.max(v, 0)));
    expect(vals(a.pow(2))).toEqual(av.map((v) => v * v));
    expect(vals(a.pow(3))).toEqual(av.map((v) => v ** 3));
    expect(vals(a.sign())).toEqual(av.map(Math.sign));
    expect(vals(a.add(b, { alpha: 2 }))).toEqual([21, 38, 63, 16, 45, 54]);
    expectClose(vals(a.exp()), av.map(Math.exp));
    expectClose(vals(a.abs().log()), av.map((v) => Math.log(Math.abs(v))));
    expectClose(vals(a.abs().sqrt()), av.map((v) => Math.sqrt(Math.abs(v))));
    expectClose(vals(a.tanh()), av.map(Math.tanh));
    expectClose(vals(a.sigmoid()), av.map((v) => 1 / (1 + Math.exp(-v))));
    expectClose(vals(torch.sigmoid(a)), av.map((v) => 1 / (1 + Math.exp(-v))));
    expectClose(vals(a.abs().pow(0.5)), av.map((v) => Math.sqrt(Math.abs(v))));
    expectClose(vals(a.pow(-1)), av.map((v) => 1 / v));
    expect(vals(a.clamp({ min: 0, max: 4 }))).toEqual([1, 0, 3, 0, 4, 0]);
    expect(vals(a.clamp(-3))).toEqual([1, -2, 3, -3, 5, -3]);
    expect(vals(a.clamp(null, 2))).toEqual([1, -2, 2, -4, 2, -6]);
    expect(vals(torch.clamp(a, { max: 0 }))).toEqual([0, -2, 0, -4, 0, -6]);
  });

  it('in-place ops write through and return this', () => {
    const x = torch.tensor([1, 2, 3]);
    expect(x.add_(1)).toBe(x);
    expect(vals(x)).toEqual([2, 3, 4]);
    x.sub_(torch.tensor([1, 1, 1]));
    x.mul_(3);
    x.div_(2);
    expect(vals(x)).toEqual([1.5, 3, 4.5]);
    x.clamp_({ max: 3 });
    expect(vals(x)).toEqual([1.5, 3, 3]);
    x.maskedFill_(x.lt(2), -1);
    expect(vals(x)).toEqual([-1, 3, 3]);
    x.copy_(torch.tensor([7, 8, 9]));
    expect(vals(x)).toEqual([7, 8, 9]);
    x.fill_(5);
    expect(vals(x)).toEqual([5, 5, 5]);
    x.zero_();
    expect(vals(x)).toEqual([0, 0, 0]);
    const m = torch.zeros(2, 3);
    m.add_(torch.tensor([1, 2, 3])); // broadcast of the other operand is fine
    expect(vals(m)).toEqual([1, 2, 3, 1, 2, 3]);
    m.copy_(torch.tensor([4, 5, 6]));
    expect(vals(m)).toEqual([4, 5, 6, 4, 5, 6]);
  });

  it('sum and mean: all, one dim, dim lists, negative dims, keepdim', () => {
    const x = torch.arange(24).float().reshape(2, 3, 4);
    const xv = vals(x);
    const at = (i: number, j: number, k: number) => xv[12 * i + 4 * j + k];
    expect(x.sum().itemSync()).toBe(276);
    expect(x.sum().shape).toEqual([]);
    expect(x.mean().itemSync()).toBe(11.5);
    const s1 = x.sum(1);
    expect(s1.shape).toEqual([2, 4]);
    const want1: number[] = [];
    for (let i = 0; i < 2; i++) for (let k = 0; k < 4; k++) want1.push(at(i, 0, k) + at(i, 1, k) + at(i, 2, k));
    expect(vals(s1)).toEqual(want1);
    expect(x.sum(1, true).shape).toEqual([2, 1, 4]);
    expect(vals(x.sum(1, true))).toEqual(want1);
    const s02 = x.sum([0, 2]);
    expect(s02.shape).toEqual([3]);
    const want02 = [0, 1, 2].map((j) => [0, 1].reduce((p, i) => p + [0, 1, 2, 3].reduce((q, k) => q + at(i, j, k), 0), 0));
    expect(vals(s02)).toEqual(want02);
    expect(x.sum([0, 2], true).shape).toEqual([1, 3, 1]);
    expect(vals(x.sum(-1))).toEqual(vals(x.sum(2)));
    expect(vals(x.mean([0, 2]))).toEqual(want02.map((v) => v / 8));
    expect(x.mean(-1, true).shape).toEqual([2, 3, 1]);
    expect(vals(torch.mean(x, 0))).toEqual(vals(x.sum(0).div(2)));
    expect(vals(torch.sum(x, [1, 2]))).toEqual([66, 210]);
  });

  it('max/min without dim give a 0-d tensor; with dim give { values, indices }', () => {
    const x = torch.tensor([[3, 9, -1], [7, 0, 8]]);
    const m = x.max();
    expect(m.shape).toEqual([]);
    expect(m.itemSync()).toBe(9);
    expect(x.min().itemSync()).toBe(-1);
    expect(torch.max(x).itemSync()).toBe(9);
    const r = x.max(1);
    expect(vals(r.values)).toEqual([9, 8]);
    expect(vals(r.indices)).toEqual([1, 2]);
    expect(r.indices.dtype).toBe('int32');
    const r0 = x.max(0, true);
    expect(r0.values.shape).toEqual([1, 3]);
    expect(vals(r0.values)).toEqual([7, 9, 8]);
    expect(vals(r0.indices)).toEqual([1, 0, 1]);
    const mn = torch.min(x, 1);
    expect(vals(mn.values)).toEqual([-1, 0]);
    expect(vals(mn.indices)).toEqual([2, 1]);
    expect(vals(x.min(-2).values)).toEqual([3, 0, -1]);
    expect(vals(x.argmax(1))).toEqual([1, 2]);
    expect(x.argmax().itemSync()).toBe(1);
    expect(vals(x.argmin(1))).toEqual([2, 1]);
    expect(vals(x.max(torch.tensor([5, 5, 5])))).toEqual([5, 9, 5, 7, 5, 8]);
    expect(vals(torch.min(x, torch.tensor([5, 5, 5])))).toEqual([3, 5, -1, 5, 0, 5]);
    expect(vals(x.amax(0))).toEqual([7, 9, 8]);
    // ties: argmax picks the first, as PyTorch does on CPU
    expect(vals(torch.tensor([[2, 5, 5], [1, 1, 0]]).max(1).indices)).toEqual([1, 0]);
  });

  it('softmax rows sum to 1; logSoftmax and logsumexp agree with a direct computation', () => {
    const rows = [[1, 2, 3], [-100, 0, 100], [1000, 1000, 999]];
    const x = torch.tensor(rows);
    const s = x.softmax(1);
    const sv = vals(s);
    for (let i = 0; i < 3; i++) expect(Math.abs(sv[3 * i] + sv[3 * i + 1] + sv[3 * i + 2] - 1)).toBeLessThan(1e-6);
    expect(sv.every(Number.isFinite)).toBe(true);
    const lse = rows.map((r) => {
      const m = Math.max(...r);
      return m + Math.log(r.reduce((p, v) => p + Math.exp(v - m), 0));
    });
    expectClose(vals(x.logsumexp(1)), lse);
    expect(x.logsumexp(1, true).shape).toEqual([3, 1]);
    expectClose(vals(x.logSoftmax(1)), rows.flatMap((r, i) => r.map((v) => v - lse[i])));
    expectClose(vals(x.softmax(0).sum(0)), [1, 1, 1]);
  });

  it('where and maskedFill', () => {
    const x = torch.tensor([[1, -2], [-3, 4]]);
    const y = torch.tensor([10, 20]);
    expect(vals(torch.where(x.gt(0), x, y))).toEqual([1, 20, 10, 4]);
    expect(vals(torch.where(x.gt(0), x, 0))).toEqual([1, 0, 0, 4]);
    expect(vals(torch.where(x.gt(0), 1, -1))).toEqual([1, -1, -1, 1]);
    expect(vals(x.where(x.lt(0), 0))).toEqual([0, -2, -3, 0]);
    expect(vals(x.maskedFill(x.lt(0), 0))).toEqual([1, 0, 0, 4]);
    expect(vals(torch.maskedFill(x, x.gt(0), 9))).toEqual([9, -2, -3, 9]);
    expect(vals(x)).toEqual([1, -2, -3, 4]); // out of place
    expect(vals(x.maskedFill(torch.tensor([true, false]).bool(), 7))).toEqual([7, -2, 7, 4]); // a broadcast mask
  });

  it('mm and matmul shapes and values', () => {
    const a = torch.tensor([[1, 2], [3, 4], [5, 6]]);
    const b = torch.tensor([[1, 0, -1], [2, 1, 0]]);
    expect(a.mm(b).tolistSync()).toEqual([[5, 2, -1], [11, 4, -3], [17, 6, -5]]);
    expect(vals(torch.tensor([1, 2, 3]).matmul(torch.tensor([4, 5, 6])))).toEqual([32]);
    expect(torch.tensor([1, 2, 3]).matmul(torch.tensor([4, 5, 6])).shape).toEqual([]);
    expect(vals(b.matmul(torch.tensor([1, 1, 1])))).toEqual([0, 3]);
    expect(vals(torch.tensor([1, 1, 1]).matmul(a))).toEqual([9, 12]);
    const batched = stack([a, a.mul(2)]);
    expect(batched.matmul(b).shape).toEqual([2, 3, 3]);
    expect(vals(batched.matmul(b))).toEqual([...vals(a.mm(b)), ...vals(a.mul(2).mm(b))]);
    const bb = stack([b, b.neg()]);
    expect(vals(batched.matmul(bb))).toEqual([...vals(a.mm(b)), ...vals(a.mul(2).mm(b.neg()))]);
  });

  it('item and itemSync', async () => {
    expect(torch.tensor([[4.25]]).itemSync()).toBe(4.25);
    expect(await torch.tensor([4.25]).item()).toBe(4.25);
    expect(torch.tensor([1, 2, 3]).sum().itemSync()).toBe(6);
  });
});
