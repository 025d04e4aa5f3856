/** compiled.warmup(): an async first call that creates the pipelines concurrently, then runs. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { webgpuAvailable } from './helpers/devices.ts';

describe.skipIf(!webgpuAvailable)('compiled warmup', () => {
  it('a whole Adam step: warmup runs the first step (equal to eager), later calls hit the cache', async () => {
    const dev = 'webgpu';
    torch.manualSeed(3);
    const x = torch.randn(16, 12, { device: dev });
    const y = torch.randn(16, 3, { device: dev });
    const make = () => {
      torch.manualSeed(4);
      return new torch.nn.Sequential(new torch.nn.Linear(12, 8), new torch.nn.ReLU(), new torch.nn.Linear(8, 3)).to(dev);
    };
    const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
    const m1 = make();
    const m2 = make();
    const o1 = new torch.optim.Adam(m1.parameters(), { lr: 1e-2 });
    const o2 = new torch.optim.Adam(m2.parameters(), { lr: 1e-2 });
    const step = torch.compile(() => {
      const l = lossFn(m1(x), y);
      o1.zeroGrad();
      l.backward();
      o1.step();
      return l;
    });
    const eager = () => {
      const l = lossFn(m2(x), y);
      o2.zeroGrad();
      l.backward();
      o2.step();
      return l;
    };
    const first = await (await step.warmup()).item();
    expect(first).toBeCloseTo(await eager().item(), 4);
    for (let t = 0; t < 3; t++) expect(await step().item()).toBeCloseTo(await eager().item(), 3);
    expect(step.cacheInfo()).toEqual({ graphs: 1, hits: 3, misses: 1 });
  });

  it('a compiled model: warmup returns the forward, and its backward works', async () => {
    torch.manualSeed(5);
    const m = new torch.nn.Linear(6, 4).to('webgpu');
    const x = torch.randn(5, 6, { device: 'webgpu' });
    const fast = torch.compile(m);
    const out = await fast.warmup(x);
    const want = await m(x).toArray();
    const got = await out.toArray();
    want.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    out.sum().backward();
    expect(m.weight.grad).not.toBeNull();
    expect(await m.weight.grad!.sum().item()).toBeCloseTo(await x.sum(0).sum().mul(4).item(), 3);
  });
});
