/**
 * torch.compile(f, { eagerWhileCompiling: true }): a new graph's kernels compile on a
 * second device (off the main queue, warming the driver's shader cache) while calls run
 * eagerly; then calls run compiled. The cold-start promise of `npm start` as counts, never
 * times: before the first step's loss is read, the main device compiles no pipeline of
 * the graph and no matmul variant is tuned; every result equals eager mode's.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { relDiff, twins } from './helpers/compile-util.ts';

// the first layer's matmuls are large enough (> 2 MFLOP) for the tuner to want them
const make = () => new torch.nn.Sequential(new torch.nn.Linear(256, 128), new torch.nn.ReLU(), new torch.nn.Linear(128, 3));

function stepOf(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) {
  const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
  const lossFn = new torch.nn.MSELoss();
  return () => {
    const l = lossFn(model(x) as torch.Tensor, y);
    opt.zeroGrad();
    l.backward();
    opt.step();
    return l;
  };
}

describe('eagerWhileCompiling on the cpu', () => {
  it('has nothing to wait for: the first call runs compiled', async () => {
    const [a, b] = twins(make, 'cpu', 4);
    const x = torch.randn(64, 256);
    const y = torch.randn(64, 3);
    const eager = stepOf(a, x, y);
    const fast = torch.compile(stepOf(b, x, y), { eagerWhileCompiling: true });
    for (let i = 0; i < 3; i++) expect(relDiff([await fast().item()], [await eager().item()]).rel).toBeLessThan(1e-5);
    expect(fast.graphs()[0]!.stats.calls).toBe(3);
    expect(fast.cacheInfo()).toEqual({ graphs: 1, hits: 2, misses: 1 });
  });

  it('rejects a non-boolean option', () => {
    expect(() => torch.compile(() => torch.ones(1), { eagerWhileCompiling: 'yes' as unknown as boolean })).toThrow(/eagerWhileCompiling must be true or false/);
  });
});

describe.skipIf(!webgpuAvailable)('eagerWhileCompiling on webgpu', () => {
  it('runs eagerly, compiling no pipeline of the graph on the main device, until the background compile is done; then compiled; always equal to eager', async () => {
    await torch.webgpu.init();
    const ctx = torch.webgpu.context();
    const [a, b] = twins(make, 'webgpu', 5);
    torch.manualSeed(6);
    const x = torch.randn(64, 256, { device: 'webgpu' });
    const y = torch.randn(64, 3, { device: 'webgpu' });
    const eager = stepOf(a, x, y);
    const fast = torch.compile(stepOf(b, x, y), { eagerWhileCompiling: true, autotune: true });
    const want0 = await eager().item(); // its eager pipelines are now in the cache

    const mainBefore = ctx.pipelinesCompiled;
    const backgroundBefore = ctx.background.compiled;
    const got0 = await fast().item();
    // the first call ran eagerly: the main device created no pipeline (the eager kernels were cached) and tuned nothing
    expect(ctx.pipelinesCompiled - mainBefore).toBe(0);
    expect(fast.graphs()).toHaveLength(1);
    const g = fast.graphs()[0]!;
    expect(g.stats.calls).toBe(0);
    expect(g.stats.matmuls.filter((m) => m.problem.includes('x256')).length).toBeGreaterThan(0);
    expect(g.stats.matmuls.every((m) => m.source === 'default')).toBe(true);
    expect(relDiff([got0], [want0]).rel).toBeLessThan(1e-6);

    await fast.ready();
    // every kernel of the graph compiled once on the background device
    expect(ctx.background.compiled - backgroundBefore).toBe(g.stats.kernels);
    const want1 = await eager().item();
    const got1 = await fast().item();
    expect(g.stats.calls).toBe(1); // this call ran compiled
    expect(ctx.pipelinesCompiled - mainBefore).toBe(g.stats.kernels);
    expect(relDiff([got1], [want1]).rel).toBeLessThan(1e-5);
    for (let i = 0; i < 3; i++) expect(relDiff([await fast().item()], [await eager().item()]).rel).toBeLessThan(1e-5);
    expect(g.stats.calls).toBe(4);
    expect(g.stats.matmuls.every((m) => m.source === 'default')).toBe(true); // tuned only when asked (warmup)
    const pa = a.parameters();
    const pb = b.parameters();
    for (let i = 0; i < pa.length; i++) expect(relDiff(await pb[i]!.toArray(), await pa[i]!.toArray()).rel).toBeLessThan(1e-5);
    expect(fast.cacheInfo()).toEqual({ graphs: 1, hits: 4, misses: 1 }); // 5 calls: the first built the graph
  });
});
