/**
 * The tensor ops beyond the seed, for what models.json does not pin down: PyTorch's
 * shape rules of indexing, split and chunk, the random factories (manualSeed,
 * permutations, sampling), var's argument forms, N-D matmul and negative dims, and the
 * IR torch.trace records for them. Values against hand-computed ones or the other device.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices, webgpuAvailable } from './helpers/devices.ts';

const i32 = (v: number[] | number[][], device: torch.Device = 'cpu') => torch.tensor(v, { dtype: 'int32', device });
const sl = torch.slice;

describe('indexing follows PyTorch', () => {
  const x = torch.arange(24).float().reshape(2, 3, 4);
  it('numbers, null, slices (negative, clamped, stepped) and trailing dims', async () => {
    expect(x.index(0).shape).toEqual([3, 4]);
    expect(x.index(null, -1).shape).toEqual([2, 4]);
    expect(await x.index(1, sl(-2), sl(null, null, 3)).tolist()).toEqual([[16, 19], [20, 23]]);
    expect(x.index(sl(5, 10)).shape).toEqual([0, 3, 4]);
    expect(await x.index(0, 0, sl(1, 100, 2)).tolist()).toEqual([1, 3]);
    expect(await x.index(-1, -1, -1).item()).toBe(23);
    expect(x.index().shape).toEqual([2, 3, 4]);
  });
  it('tensor items: adjacent ones stay in place, separated ones lead (ints are selects first)', () => {
    const i = i32([0, 1]);
    expect(x.index(null, i, sl(1, 3)).shape).toEqual([2, 2, 2]);
    expect(x.index(null, i, i).shape).toEqual([2, 2]);
    expect(x.index(i, null, i).shape).toEqual([2, 3]);
    expect(x.index(0, null, i).shape).toEqual([3, 2]);
    expect(x.index(i32([[0, 1], [1, 1]])).shape).toEqual([2, 2, 3, 4]);
  });
  it('two tensor indices broadcast and pick elements', async () => {
    expect(await x.index(i32([0, 1, 1]), i32([2, 0, -1]), 3).tolist()).toEqual([11, 15, 23]);
    expect(await x.index(i32([[0], [1]]), i32([0, 2])).sum(-1).tolist()).toEqual([[6, 38], [54, 86]]);
  });
  it('split and chunk sizes are PyTorch\'s', () => {
    const m = torch.zeros(6, 5);
    expect(m.split(2, 1).map((t) => t.shape[1])).toEqual([2, 2, 1]);
    expect(m.split([1, 4], -1).map((t) => t.shape[1])).toEqual([1, 4]);
    expect(m.chunk(4, 0).map((t) => t.shape[0])).toEqual([2, 2, 2]);
    expect(torch.zeros(5, 2).chunk(3).map((t) => t.shape[0])).toEqual([2, 2, 1]);
    expect(torch.chunk(m, 10, 1).length).toBe(5);
  });
  it('cat skips legacy empty 1-D tensors; stack at a negative dim', () => {
    const a = torch.ones(2, 3);
    expect(torch.cat([torch.zeros(0), a, a], -1).shape).toEqual([2, 6]);
    expect(torch.stack([a, a, a], -1).shape).toEqual([2, 3, 3]);
    expect(torch.cat([a.int(), a.int()]).dtype).toBe('int32');
  });
  it('gradients add into the source where indices repeat, through every form', async () => {
    const E = torch.zeros(4, 2, { requiresGrad: true });
    E.index(i32([[1, 1], [3, 1]])).sum().backward();
    expect(await E.grad!.tolist()).toEqual([[0, 0], [3, 3], [0, 0], [1, 1]]);
    const A = torch.zeros(2, 3, { requiresGrad: true });
    torch.cat([A.index(null, sl(null, null, 2)), A.narrow(1, 1, 2), A.select(0, 1).unsqueeze(0).expand(2, 3)], 1).sum().backward();
    expect(await A.grad!.tolist()).toEqual([[1, 1, 2], [3, 3, 4]]);
  });
});

describe('factories', () => {
  it('linspace and eye', async () => {
    expect(await torch.linspace(0, 1, 5).tolist()).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(await torch.linspace(2, 3, 1).tolist()).toEqual([2]);
    expect(torch.linspace(0, 1, 0).shape).toEqual([0]);
    expect(await torch.eye(2).tolist()).toEqual([[1, 0], [0, 1]]);
    expect(await torch.eye(2, 3, { dtype: 'int32' }).tolist()).toEqual([[1, 0, 0], [0, 1, 0]]);
  });
  it('randperm is a permutation that follows manualSeed', async () => {
    torch.manualSeed(3);
    const a = await torch.randperm(50).tolist() as number[];
    torch.manualSeed(3);
    const b = await torch.randperm(50).tolist() as number[];
    expect(a).toEqual(b);
    expect([...a].sort((p, q) => p - q)).toEqual([...Array(50).keys()]);
    expect(a).not.toEqual([...Array(50).keys()]);
    expect(torch.randperm(7).dtype).toBe('int32');
  });
  for (const device of testDevices()) {
    it(`multinomial on ${device}: follows manualSeed, matches the distribution, never picks a zero weight`, async () => {
      const p = torch.tensor([[0.1, 0, 0.6, 0.3], [0, 0, 0, 2]], { device });
      torch.manualSeed(11);
      const s = await torch.multinomial(p, 4000, { replacement: true }).tolist() as number[][];
      torch.manualSeed(11);
      expect(await torch.multinomial(p, 4000, { replacement: true }).tolist()).toEqual(s);
      const freq = [0, 1, 2, 3].map((k) => s[0].filter((v) => v === k).length / 4000);
      expect(freq[1]).toBe(0);
      expect(Math.abs(freq[0] - 0.1)).toBeLessThan(0.02);
      expect(Math.abs(freq[2] - 0.6)).toBeLessThan(0.03);
      expect(s[1].every((v) => v === 3)).toBe(true);
      // without replacement: distinct categories, the zero weight last never drawn
      const w = await torch.multinomial(torch.tensor([5, 0, 1, 1], { device }), 3).tolist() as number[];
      expect(new Set(w).size).toBe(3);
      expect(w).not.toContain(1);
      expect(torch.multinomial(torch.tensor([1, 1], { device }), 1).shape).toEqual([1]);
      expect(torch.tensor([[1, 1, 1]], { device }).multinomial(2).shape).toEqual([1, 2]);
    });
  }
  it.runIf(webgpuAvailable)('multinomial on webgpu reports a row that is not a distribution at the readback', async () => {
    const p = torch.tensor([[1, 2], [0, 0], [1, -1]], { device: 'webgpu' });
    await expect(torch.multinomial(p, 2, { replacement: true }).tolist()).rejects.toThrow('multinomial: 4 sample values (from -1 to -1) are out of bounds for 2 categories');
  });
  for (const device of testDevices()) {
    it(`multinomial inside torch.compile on ${device}: the eager draws, fresh on every call, no recompile`, async () => {
      const f = torch.compile((q: torch.Tensor) => torch.multinomial(q.softmax(-1), 8, { replacement: true }));
      const q = torch.zeros(1, 5, { device });
      torch.manualSeed(1);
      const first = await f(q).tolist();
      const second = await f(q).tolist();
      torch.manualSeed(1);
      expect(await torch.multinomial(q.softmax(-1), 8, { replacement: true }).tolist()).toEqual(first);
      expect(second).not.toEqual(first);
      expect(f.graphs().length).toBe(1);
    });
  }
});

describe('reductions and shapes', () => {
  const A = torch.tensor([[1, 2, 3, 4], [2, 4, 6, 8]]);
  it('var and std argument forms', async () => {
    expect(await A.var(1).tolist()).toEqual([5 / 3, 20 / 3].map(Math.fround));
    expect(await A.var(1, { correction: 0 }).tolist()).toEqual([1.25, 5]);
    expect(A.var(1, true).shape).toEqual([2, 1]);
    expect(await A.var({ correction: 0 }).item()).toBeCloseTo(4.6875, 5);
    expect(await torch.std(A, -1, { keepdim: true, correction: 0 }).tolist()).toEqual([[Math.fround(Math.sqrt(1.25))], [Math.fround(Math.sqrt(5))]]);
    expect(await torch.var(A, [0, 1]).item()).toBeCloseTo(37.5 / 7, 5);
    expect(Number.isNaN(await torch.ones(1).var().item())).toBe(true);
  });
  it('argmax / argmin with dim, keepdim, negative dims', async () => {
    const x = torch.tensor([[3, 1, 3], [0, 5, -2]]);
    expect(await x.argmax(1).tolist()).toEqual([0, 1]);
    expect(await x.argmin(-1, true).tolist()).toEqual([[1], [2]]);
    expect(await x.argmax().item()).toBe(4);
    expect(await torch.argmin(x, 0).tolist()).toEqual([1, 0, 1]);
  });
  it('matmul with N-D broadcast batch dims equals a loop of mm; transpose(-2,-1) and softmax(-1) on rank 4', async () => {
    torch.manualSeed(2);
    const a = torch.randn(2, 1, 3, 4);
    const b = torch.randn(3, 4, 5);
    const c = a.matmul(b);
    expect(c.shape).toEqual([2, 3, 3, 5]);
    const want = await a.index(1, 0).mm(b.index(2)).toArray();
    const got = await c.index(1, 2).toArray();
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
    const t = torch.randn(2, 3, 4, 5);
    expect(t.transpose(-2, -1).shape).toEqual([2, 3, 5, 4]);
    const s = await t.softmax(-1).sum(-1).toArray();
    s.forEach((v) => expect(v).toBeCloseTo(1, 6));
    expect(torch.bmm(torch.randn(2, 3, 4), torch.randn(2, 4, 1)).shape).toEqual([2, 3, 1]);
  });
  it('pow with a tensor exponent follows C pow for negative bases', async () => {
    const r = await torch.tensor([-2, -2, -8, 0, 0, 4]).pow(torch.tensor([3, 2, 1 / 3, 0, -1, 0.5])).tolist() as number[];
    expect(r.slice(0, 2)).toEqual([-8, 4]);
    expect(Number.isNaN(r[2])).toBe(true);
    expect(r.slice(3)).toEqual([1, Infinity, 2]);
    expect(await torch.pow(2, torch.tensor([0, 3])).tolist()).toEqual([1, 8]);
  });
});

describe('compiled equals eager', () => {
  for (const device of testDevices()) {
    it(`cat with one-element parts, gradients through it (${device}): the one-element zeros stay tensors for sliceScatter`, async () => {
      const f = (a: torch.Tensor, b: torch.Tensor) => torch.cat([a.softmax(0), b, b.mul(2)], 0).mul(torch.arange(7, { device }).float()).sum();
      const run = async (fn: typeof f) => {
        const a = torch.tensor([0.5, -1, 2, 0, 1], { device, requiresGrad: true });
        const b = torch.tensor([3], { device, requiresGrad: true });
        const loss = fn(a, b);
        loss.backward();
        return [await loss.item(), ...(await a.grad!.toArray()), ...(await b.grad!.toArray())];
      };
      const want = await run(f);
      const got = await run(torch.compile(f));
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i], 5));
      expect(want[want.length - 1]).toBe(5 + 12);
    });
  }
});

describe('torch.trace records the new primitives', () => {
  it('slice, sliceScatter, gather, scatterAdd and the elementwise ones appear in the IR', () => {
    const f = (a: torch.Tensor, e: torch.Tensor) => {
      const y = torch.cat([a.narrow(1, 0, 2).sin(), e.index(i32([0, 2])).erf()], 0);
      return y.pow(a.index(sl(0, 1), sl(1, 3)).cos().abs().add(1)).sum();
    };
    const traced = torch.trace(f, torch.randn(3, 4, { requiresGrad: true }), torch.randn(3, 2, { requiresGrad: true }), { backward: true });
    traced.verify();
    for (const op of ['slice', 'sliceScatter', 'gather', 'sin', 'cos', 'erf', 'powt']) expect(traced.forward).toContain(op);
    expect(traced.backward).toContain('scatterAdd');
  });
});
