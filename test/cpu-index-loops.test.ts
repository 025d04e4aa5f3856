/**
 * The cpu target's index bodies (slice, sliceScatter, gather, scatterAdd) as generated loops
 * that read operands through their strides (src/codegen-cpu/index-js.ts): on views the
 * loops walk (transposed, stepped, broadcast, size-1 dims, rank 0, empty), forward and
 * backward, a compiled call's value equals eager cpu bit for bit and its gradients to float
 * rounding (fused sums round once), and every such kernel runs as one loop, no eager kernel
 * on copies.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { CpuPlan } from '../src/compile/cpu-plan.ts';
import { takeChecks } from '../src/compile/checks.ts';
import { optimize } from '../src/compile/optimize.ts';

type T = torch.Tensor;
const INDEX_OPS = ['slice', 'sliceScatter', 'gather', 'scatterAdd'];

/** Eager and compiled: the value of fn and the gradients of sum(fn * weights) for every float input, as arrays. */
async function run(fn: (...xs: T[]) => T, make: () => T[], compiled: boolean) {
  const xs = make();
  const f = compiled ? torch.compile(fn) : fn;
  const y = f(...xs);
  torch.manualSeed(99);
  const w = torch.randn(y.shape);
  const floats = xs.filter((x) => x.requiresGrad);
  if (floats.length) y.mul(w).sum().backward();
  return { y: Array.from(await y.toArray()), shape: y.shape, grads: await Promise.all(floats.map(async (x) => Array.from(await x.grad!.toArray()))) };
}

/** The index kernels of fn's forward and backward graph, and the kinds of their steps. */
function indexSteps(fn: (...xs: T[]) => T, xs: T[]) {
  const t = torch.trace(fn, ...xs, { backward: xs.some((x) => x.requiresGrad) });
  const plan = new CpuPlan(optimize(takeChecks(t.graph).graph));
  return plan.kernels.filter((k) => k.kernel.body.kind === 'index' && INDEX_OPS.includes((k.kernel.body as { op: string }).op)).map((k) => ({ op: (k.kernel.body as { op: string }).op, steps: k.steps.map((s) => s.kind) }));
}

async function expectEagerEqual(fn: (...xs: T[]) => T, make: () => T[], ops: string[]) {
  const eager = await run(fn, make, false);
  const fast = await run(fn, make, true);
  expect(fast.shape).toEqual(eager.shape);
  expect(fast.y).toEqual(eager.y);
  // gradients pass through fused sums (doubles, rounded once), so they agree to float rounding
  expect(fast.grads.length).toBe(eager.grads.length);
  fast.grads.forEach((g, i) => {
    expect(g.length).toBe(eager.grads[i].length);
    g.forEach((v, j) => expect(Math.abs(v - eager.grads[i][j]), `grad ${i}[${j}]`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(eager.grads[i][j]))));
  });
  const steps = indexSteps(fn, make());
  for (const op of ops) expect(steps.map((s) => s.op), `${op} among ${JSON.stringify(steps)}`).toContain(op);
  // one generated loop each: no strided copy, no eager kernel
  for (const s of steps) expect(s.steps, s.op).toEqual(['js']);
}

const rnd = (shape: number[], seed: number, requiresGrad = true) => {
  torch.manualSeed(seed);
  return torch.randn(shape, { requiresGrad });
};

describe('cpu index loops equal eager cpu', () => {
  it('slices of transposed, stepped and broadcast views (and their sliceScatter gradients)', async () => {
    const fn = (x: T, b: T) => {
      const a = x.transpose(0, 2).index(torch.slice(1, 4), null, torch.slice(0, 5, 2)); // [3, 3, 3] of a permuted view
      const e = b.expand(3, 4, 5).narrow(1, 1, 3).narrow(2, 1, 3); // stride-0 dim
      return a.mul(e.sum(1, true));
    };
    await expectEagerEqual(fn, () => [rnd([5, 4, 6], 1), rnd([1, 4, 5], 2)], ['slice', 'sliceScatter']);
  });

  it('size-1 dims, a rank-0 result and an empty slice', async () => {
    const fn = (x: T) => {
      const s = x.narrow(1, 1, 3); // [1, 3, 1, 4]
      const r = x.select(1, 2).select(0, 0).select(0, 0).select(0, 3); // rank 0
      const empty = x.narrow(3, 2, 0).sum(); // no elements
      return s.mul(r).add(empty);
    };
    await expectEagerEqual(fn, () => [rnd([1, 5, 1, 4], 3)], ['slice']);
  });

  it('cat of views (sliceScatter forward, slices backward)', async () => {
    const fn = (x: T, y: T) => torch.cat([x.t(), y.mul(2), x.t().narrow(1, 0, 2)], 1);
    await expectEagerEqual(fn, () => [rnd([4, 3], 4), rnd([3, 5], 5)], ['sliceScatter', 'slice']);
  });

  it('gathers and their scatterAdd gradients, with repeated, transposed and broadcast indices', async () => {
    const idx = torch.tensor([[1, 4, 4], [0, 6, 2]], { dtype: 'int32' });
    const fn = (emb: T, x: T) => {
      const e = emb.index(idx); // [2, 3, 5] rows of emb, repeated row 4
      const g = x.t().gather(1, torch.tensor([[2], [0], [3], [3]], { dtype: 'int32' }).expand(4, 3)); // index broadcast along dim 1
      return e.sum(2).mul(g.sum(0).unsqueeze(0));
    };
    await expectEagerEqual(fn, () => [rnd([7, 5], 6), rnd([5, 4], 7)], ['gather', 'scatterAdd']);
  });

  it('an index out of range throws the eager error before anything is written', async () => {
    const emb = rnd([4, 3], 8, false);
    const bad = torch.tensor([0, 4], { dtype: 'int32' });
    const fn = (e: T, i: T) => e.gather(0, i.unsqueeze(1).expand(2, 3));
    let eagerMsg = '';
    try {
      fn(emb, bad);
    } catch (e) {
      eagerMsg = (e as Error).message;
    }
    expect(eagerMsg).toMatch(/out of bounds/);
    const fast = torch.compile(fn);
    expect(Array.from(await fast(emb, torch.tensor([3, 1], { dtype: 'int32' })).toArray())).toEqual(Array.from(await fn(emb, torch.tensor([3, 1], { dtype: 'int32' })).toArray()));
    expect(() => fast(emb, bad)).toThrow(/out of bounds/);
  });
});

describe('cpu window loops (im2col, col2im) equal eager cpu', () => {
  const F = torch.nn.functional;
  it('convolutions with stride, padding and dilation, on a permuted view (patch-matrix operands, the transposed map of an input gradient)', async () => {
    const fn = (x: T, w: T) => {
      const v = x.permute(0, 1, 3, 2); // the source read through strides
      const a = F.conv2d(v, w, null, { stride: 2, padding: 1 });
      const b = F.conv2d(v, w, null, { padding: 2, dilation: 2 });
      return a.sum([2, 3]).add(b.sum([2, 3]));
    };
    const eager = await run(fn, () => [rnd([2, 3, 7, 6], 11), rnd([4, 3, 3, 3], 12)], false);
    const fast = await run(fn, () => [rnd([2, 3, 7, 6], 11), rnd([4, 3, 3, 3], 12)], true);
    fast.y.forEach((v, i) => expect(v).toBeCloseTo(eager.y[i], 4));
    fast.grads.forEach((g, k) => g.forEach((v, i) => expect(v, `grad ${k}[${i}]`).toBeCloseTo(eager.grads[k][i], 4)));
    // the patch matrices are matmul operands read through the map, built by a loop, never an eager kernel
    const t = torch.trace(fn, rnd([2, 3, 7, 6], 11), rnd([4, 3, 3, 3], 12), { backward: true });
    const plan = new CpuPlan(optimize(takeChecks(t.graph).graph));
    const mm = plan.kernels.filter((k) => k.kernel.body.kind === 'matmul').map((k) => k.kernel.body as Extract<typeof k.kernel.body, { kind: 'matmul' }>);
    expect(mm.filter((b) => b.windowA || b.windowB).length).toBeGreaterThanOrEqual(4);
    expect(mm.some((b) => b.windowA?.transposed || b.windowB?.transposed)).toBe(true);
    expect(plan.kernels.flatMap((k) => k.steps.filter((s) => s.kind === 'op'))).toEqual([]);
  });

  it('max and average pools (-inf padding; col2im and col2imAt of their gradients) are one loop each and equal eager bit for bit', async () => {
    const fn = (x: T) => F.maxPool2d(x.transpose(2, 3), 3, { stride: 2, padding: 1 }).add(F.avgPool2d(x, 2, { stride: 1, padding: 1 }).narrow(2, 0, 3).narrow(3, 0, 3));
    await expectEagerEqual(fn, () => [rnd([2, 2, 5, 5], 13)], []);
    const t = torch.trace(fn, rnd([2, 2, 5, 5], 13), { backward: true });
    const plan = new CpuPlan(optimize(takeChecks(t.graph).graph));
    const windows = plan.kernels.filter((k) => k.kernel.body.kind === 'index' && ['im2col', 'col2im', 'col2imAt'].includes((k.kernel.body as { op: string }).op));
    // the pools' im2cols are read inside their row kernels ([window-load]), not written
    expect(windows.map((k) => (k.kernel.body as { op: string }).op).sort()).toEqual(['col2im', 'col2imAt']);
    for (const k of windows) expect(k.steps.map((s) => s.kind), k.name).toEqual(['js']);
  });

  it('an im2col that is returned (so written) is one loop and equals eager bit for bit', async () => {
    const fn = (x: T) => x.transpose(2, 3)._im2col({ kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], out: [3, 3], transposed: false, fill: '-inf' });
    await expectEagerEqual(fn, () => [rnd([2, 2, 5, 5], 14)], []);
    const t = torch.trace(fn, rnd([2, 2, 5, 5], 14));
    const plan = new CpuPlan(optimize(takeChecks(t.graph).graph));
    expect(plan.kernels.map((k) => [k.kernel.body.kind === 'index' && k.kernel.body.op, k.steps.map((s) => s.kind)])).toEqual([['im2col', ['js']]]);
  });
});
