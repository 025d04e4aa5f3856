/**
 * The device API of ../shared/API.md on 'webgpu': moving tensors and modules, the
 * default device, async-only reads, device-mixing errors, seeded factories, optimizers
 * on the device, and printing.
 */
import { format, inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import type { DType } from '../src/ir/dtype.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';
import { compareArrays } from './helpers/differential.ts';

// See test/helpers/webgpu-workarounds.ts (a reported bug in the context's wait estimator).
if (webgpuAvailable) disableWaitSleep();

type T = torch.Tensor;
const nn = torch.nn;
const arr = async (t: T) => Array.from(await t.toArray());

/** Same construction on both devices: a seeded model and a fixed batch. */
function makeModel(device: 'cpu' | 'webgpu') {
  torch.manualSeed(7);
  const model = new nn.Sequential(new nn.Linear(5, 9), new nn.Tanh(), new nn.Linear(9, 3));
  const x = torch.randn(11, 5);
  const y = torch.randn(11, 3);
  model.to(device);
  return { model, x: x.to(device), y: y.to(device) };
}

async function expectClose(got: T, want: T, what: string, tol = { rtol: 1e-5, atol: 1e-6 }) {
  expect(got.shape, what).toEqual(want.shape);
  const cmp = compareArrays(await got.toArray(), await want.toArray(), want.dtype, tol);
  expect(cmp.ok, `${what}: ${cmp.detail}`).toBe(true);
}

describe.runIf(webgpuAvailable)('webgpu device API', () => {
  afterEach(() => torch.setDefaultDevice('cpu'));

  it("t.to('webgpu') and back, for every dtype, empty and 0-d tensors", async () => {
    const cases: [number[], DType, number[]][] = [
      [[2, 3], 'float32', [1.5, -2, 0, 3.25, -0, 1e-30]],
      [[4], 'int32', [-7, 0, 2147483647, -2147483648]],
      [[5], 'bool', [1, 0, 0, 1, 1]],
      [[0, 3], 'float32', []],
      [[], 'float32', [42.5]],
    ];
    for (const [shape, dtype, values] of cases) {
      const c = torch.tensor(values, { shape, dtype });
      const g = c.to('webgpu');
      expect(g.device).toBe('webgpu');
      expect(g.shape).toEqual(shape);
      expect(g.dtype).toBe(dtype);
      expect(g.to('webgpu'), 'to() the same device returns the tensor itself').toBe(g);
      expect(await arr(g)).toEqual(Array.from(c.toArraySync()));
      const back = await g.cpuAsync();
      expect(back.device).toBe('cpu');
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(Array.from(back.toArraySync()), `${dtype} ${JSON.stringify(shape)} round trip`).toEqual(Array.from(c.toArraySync()));
    }
  });

  it('t.cpu() returns at once; its values arrive asynchronously (a cpu op before then says to await)', async () => {
    const g = torch.tensor([1, 2, 3], { device: 'webgpu' }).mul(2);
    const c = g.cpu();
    expect(c.device).toBe('cpu');
    expect(() => c.toArraySync()).toThrow(/still being copied from the GPU.*await t\.toArray\(\)/);
    expect(() => c.add(1)).toThrow(/still being copied/);
    expect(await arr(c)).toEqual([2, 4, 6]);
    expect(Array.from(c.toArraySync())).toEqual([2, 4, 6]);
    expect(Array.from(c.add(1).toArraySync())).toEqual([3, 5, 7]);
    expect(await torch.tensor([[1, 2], [3, 4]], { device: 'webgpu' }).tolist()).toEqual([[1, 2], [3, 4]]);
    expect(await torch.tensor(2.5, { device: 'webgpu' }).item()).toBe(2.5);
  });

  it('to() combines device and dtype, and the gradient flows back across devices', async () => {
    const x = torch.tensor([[1, -2], [3, 4]], { requiresGrad: true });
    const g = x.to({ device: 'webgpu', dtype: 'float32' });
    expect(g.gradFn?.name).toBe('ToCopyBackward');
    expect(x.to({ device: 'webgpu', dtype: 'int32' }).dtype).toBe('int32');
    g.pow(2).sum().backward();
    expect(x.grad?.device).toBe('cpu');
    expect(await arr(x.grad!), 'the gradient arrives on cpu (asynchronously: it is read back from the GPU)').toEqual([2, -4, 6, 8]);

    const w = torch.tensor([0.5, 2], { device: 'webgpu', requiresGrad: true });
    const wc = await w.cpuAsync();
    expect(wc.gradFn?.name).toBe('ToCopyBackward');
    const loss = wc.mul(torch.tensor([3, 4])).sum();
    loss.backward();
    expect(w.grad?.device).toBe('webgpu');
    expect(await arr(w.grad!)).toEqual([3, 4]);
  });

  it('model.to(webgpu) moves every parameter and keeps the Parameter objects', async () => {
    const { model } = makeModel('cpu');
    const params = model.parameters();
    const before = params.map((p) => Array.from(p.toArraySync()));
    const opt = new torch.optim.SGD(model.parameters(), { lr: 0.1 });
    expect(model.to('webgpu')).toBe(model);
    const after = model.parameters();
    expect(after.length).toBe(params.length);
    for (let i = 0; i < params.length; i++) {
      expect(after[i], `parameter ${i} is the same object`).toBe(params[i]);
      expect(after[i]).toBeInstanceOf(nn.Parameter);
      expect(after[i].device).toBe('webgpu');
      expect(after[i].requiresGrad).toBe(true);
      expect(after[i].isLeaf).toBe(true);
      expect(await arr(after[i])).toEqual(before[i]);
    }
    expect([...model.namedParameters()].map(([n, p]) => `${n}:${p.device}`)).toEqual(['0.weight:webgpu', '0.bias:webgpu', '2.weight:webgpu', '2.bias:webgpu']);

    // The optimizer made before the move updates the moved parameters, on the device.
    const x = torch.randn(4, 5, { device: 'webgpu' });
    const loss = model(x).pow(2).mean();
    loss.backward();
    for (const p of params) expect(p.grad?.device).toBe('webgpu');
    const w0 = await arr(params[0]);
    const g0 = await arr(params[0].grad!);
    opt.step();
    expect(params[0].device).toBe('webgpu');
    const w1 = await arr(params[0]);
    w1.forEach((v, i) => expect(v).toBeCloseTo(w0[i] - 0.1 * g0[i], 6));

    // and back, grads included
    model.cpu();
    for (const p of params) {
      expect(p.device).toBe('cpu');
      expect(p.grad?.device).toBe('cpu');
    }
    await Promise.all(params.map((p) => p.toArray()));
    await Promise.all(params.map((p) => p.grad!.toArray()));
    expect(Array.from(params[0].toArraySync())).toEqual(w1);
  });

  it("setDefaultDevice('webgpu') makes every factory default there; an explicit device wins", async () => {
    torch.setDefaultDevice('webgpu');
    expect(torch.getDefaultDevice()).toBe('webgpu');
    const made: [string, T][] = [
      ['zeros', torch.zeros(2, 3)],
      ['ones', torch.ones([4])],
      ['full', torch.full([2], 7)],
      ['empty', torch.empty(3)],
      ['randn', torch.randn(3, 2)],
      ['rand', torch.rand(5)],
      ['randint', torch.randint(0, 5, [6])],
      ['arange', torch.arange(10)],
      ['tensor', torch.tensor([[1, 2], [3, 4]])],
      ['tensor 0-d', torch.tensor(3)],
      ['Linear weight', new nn.Linear(3, 2).weight],
    ];
    for (const [name, t] of made) expect(t.device, name).toBe('webgpu');
    expect(await arr(torch.arange(5))).toEqual([0, 1, 2, 3, 4]);
    expect(await arr(torch.full([2], 7))).toEqual([7, 7]);
    expect(torch.zeros(2, { device: 'cpu' }).device).toBe('cpu');
    // *Like factories follow their input
    const c = torch.ones(2, { device: 'cpu' });
    expect(torch.zerosLike(c).device).toBe('cpu');
    expect(torch.randnLike(c).device).toBe('cpu');
    torch.setDefaultDevice('cpu');
    expect(torch.zeros(2).device).toBe('cpu');
  });

  it('itemSync / toArraySync / tolistSync on webgpu throw, saying to use the async form', async () => {
    const g = torch.tensor([[2.5]], { device: 'webgpu' });
    expect(() => g.itemSync()).toThrow(/webgpu.*asynchronously.*await t\.item\(\)/);
    expect(() => g.toArraySync()).toThrow(/await t\.toArray\(\)/);
    expect(() => g.tolistSync()).toThrow(/await t\.tolist\(\)/);
    expect(() => +g).toThrow(/on webgpu cannot be used as a JavaScript number.*await t\.item\(\)/);
    expect(() => g.itemSync()).toThrow(torch.WgtorchError);
    expect(await g.item()).toBe(2.5);
  });

  it('mixing devices in one op throws, naming both devices', () => {
    const g = torch.ones(3, { device: 'webgpu' });
    const c = torch.ones(3);
    const both = /expected all tensors to be on the same device.*(webgpu and cpu|cpu and webgpu)/;
    expect(() => g.add(c)).toThrow(both);
    expect(() => c.mul(g)).toThrow(both);
    expect(() => torch.ones(2, 3, { device: 'webgpu' }).mm(torch.ones(3, 2))).toThrow(/mm: .*webgpu and cpu/);
    expect(() => torch.where(g.gt(0), c, g)).toThrow(/where: .*webgpu and cpu/);
    expect(() => g.add_(c)).toThrow(/add_: .*webgpu and cpu/);
    expect(() => g.maskedFill_(c.gt(0), 0)).toThrow(/maskedFill_: .*webgpu and cpu/);
    expect(() => nn.functional.mseLoss(g, c)).toThrow(both);
    // copy_ moves its source, as in PyTorch
    expect(g.copy_(torch.tensor([1, 2, 3])).device).toBe('webgpu');
  });

  it('manualSeed gives the same random values on cpu and webgpu', async () => {
    for (const make of [
      (device: 'cpu' | 'webgpu') => torch.randn(7, 5, { device }),
      (device: 'cpu' | 'webgpu') => torch.rand([130], { device }),
      (device: 'cpu' | 'webgpu') => torch.randint(-3, 9, [33], { device }),
      (device: 'cpu' | 'webgpu') => torch.randnLike(torch.zeros(4, 3, { device })),
    ]) {
      torch.manualSeed(1234);
      const c = make('cpu');
      torch.manualSeed(1234);
      const g = make('webgpu');
      expect(g.device).toBe('webgpu');
      expect(g.dtype).toBe(c.dtype);
      expect(await arr(g)).toEqual(Array.from(c.toArraySync()));
    }
  });

  const optimizers: [string, (ps: T[]) => torch.optim.Optimizer<object>][] = [
    ['SGD', (ps) => new torch.optim.SGD(ps, { lr: 0.05 })],
    ['SGD momentum nesterov weightDecay', (ps) => new torch.optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-2 })],
    ['SGD momentum dampening', (ps) => new torch.optim.SGD(ps, { lr: 0.05, momentum: 0.8, dampening: 0.3 })],
    ['Adam', (ps) => new torch.optim.Adam(ps, { lr: 1e-2 })],
    ['Adam amsgrad weightDecay', (ps) => new torch.optim.Adam(ps, { lr: 1e-2, amsgrad: true, weightDecay: 1e-3 })],
    ['AdamW', (ps) => new torch.optim.AdamW(ps, { lr: 1e-2 })],
    ['RMSprop centered momentum', (ps) => new torch.optim.RMSprop(ps, { lr: 1e-3, centered: true, momentum: 0.9 })],
    ['RMSprop', (ps) => new torch.optim.RMSprop(ps, { lr: 1e-3 })],
    ['Adagrad', (ps) => new torch.optim.Adagrad(ps, { lr: 0.1 })],
  ];
  for (const [name, make] of optimizers) {
    it(`${name} updates parameters on the device, equal to the cpu run`, async () => {
      const run = async (device: 'cpu' | 'webgpu') => {
        const { model, x, y } = makeModel(device);
        const opt = make(model.parameters());
        const losses: number[] = [];
        for (let step = 0; step < 6; step++) {
          opt.zeroGrad();
          const loss = nn.functional.mseLoss(model(x), y);
          loss.backward();
          opt.step();
          losses.push(await loss.item());
        }
        return { model, opt, losses };
      };
      const cpu = await run('cpu');
      const gpu = await run('webgpu');
      for (const p of gpu.model.parameters()) expect(p.device).toBe('webgpu');
      for (const state of gpu.opt.state.values()) {
        for (const [k, v] of Object.entries(state)) if (v instanceof torch.Tensor) expect(v.device, `optimizer state '${k}'`).toBe('webgpu');
      }
      gpu.losses.forEach((l, i) => expect(Math.abs(l - cpu.losses[i]), `loss at step ${i}`).toBeLessThanOrEqual(1e-5 * Math.abs(cpu.losses[i]) + 1e-7));
      const want = cpu.model.parameters();
      const got = gpu.model.parameters();
      for (let i = 0; i < want.length; i++) await expectClose(got[i], want[i], `${name}: parameter ${i} after 6 steps`, { rtol: 1e-4, atol: 1e-5 });
    });
  }

  it('console.log / util.inspect of a webgpu tensor show shape, device, dtype and gradFn, without values', () => {
    const g = torch.tensor([[123.456, 7], [8, 9]], { device: 'webgpu', requiresGrad: true });
    const shown = inspect(g);
    expect(shown).toMatch(/shape=\[2, 2\]/);
    expect(shown).toMatch(/device='webgpu'/);
    expect(shown).toMatch(/dtype=float32/);
    expect(shown).toMatch(/requiresGrad=true/);
    expect(shown).not.toMatch(/123\.45/);
    expect(format(g), 'what console.log prints').toBe(shown);
    expect(String(g)).toBe(shown);
    const h = g.mul(2);
    expect(inspect(h)).toMatch(/gradFn=<MulBackward>/);
    expect(inspect(torch.zeros(3, { device: 'webgpu', dtype: 'int32' }))).toMatch(/shape=\[3\].*device='webgpu'.*dtype=int32/);
    // cpu tensors still show their values
    expect(inspect(torch.tensor([1.5, 2]))).toMatch(/1\.5000/);
  });

  it('torch.webgpu: counters count dispatches and submits; synchronize waits; memoryStats reports live buffers', async () => {
    torch.webgpu.resetCounters();
    const a = torch.ones(100, { device: 'webgpu' });
    const b = a.add(1).mul(3);
    expect(torch.webgpu.counters().dispatches).toBeGreaterThanOrEqual(3);
    await torch.webgpu.synchronize();
    expect(torch.webgpu.counters().submits).toBeGreaterThanOrEqual(1);
    expect(await b.sum().item()).toBe(600);
    const s = torch.webgpu.memoryStats();
    expect(s.liveBuffers).toBeGreaterThanOrEqual(2);
    expect(s.liveBytes).toBeGreaterThanOrEqual(2 * 400);
  });
});
