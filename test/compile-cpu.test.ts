/**
 * torch.compile on 'cpu': the whole training step (loss + zeroGrad + backward + step) of the
 * golden runs, for every optimizer, equals eager cpu and PyTorch; parameters and optimizer
 * state are updated in place (the same tensors, an eager step afterwards continues the run);
 * `.grad` holds real cpu tensors. A loss that is a sum (a folded constant seed of backward,
 * read through an expand) once crashed here.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { expectLossesClose, relDiff, SEED, TwoLayerNet } from './helpers/compile-util.ts';
import { golden, input, makeOptimizer, makeSequential, type TrainRec } from './helpers/golden.ts';

const dev: torch.Device = 'cpu';
const STEPS = 12;
const LOSS_RTOL = 1e-5;
const PARAM_TOL = 1e-4;
const GOLDEN_RTOL = 2e-5;

const records: [string, TrainRec][] = [
  ['SGD with momentum', golden.c],
  ['Adam', golden.b],
  ['AdamW', golden.e.adamw],
  ['RMSprop', golden.e.rmsprop],
  ['Adagrad', golden.e.adagrad],
];

function trainer(rec: TrainRec) {
  const model = makeSequential(dev);
  const x = input('x', dev);
  const y = input('y', dev);
  const lossFn = new torch.nn.MSELoss({ reduction: rec.loss.includes("'sum'") ? 'sum' : 'mean' });
  const opt = makeOptimizer(rec, model.parameters());
  const stepFn = () => {
    const loss = lossFn(model(x), y);
    opt.zeroGrad({ setToNone: rec.zero_grad_set_to_none });
    loss.backward();
    opt.step();
    return loss;
  };
  return { model, opt, stepFn };
}

const snapshot = (m: torch.nn.Module) => m.parameters().map((p) => Float32Array.from(p.toArraySync()));

function expectArraysClose(got: Float32Array[], want: Float32Array[], tol: number, what: string) {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    const d = relDiff(got[i], w);
    expect(d.rel, `${what} ${i}: ${d.detail}`).toBeLessThanOrEqual(tol);
  });
}

describe('whole training step compiled on the cpu', () => {
  describe.each(records)('%s', (_name, rec) => {
    it(`${STEPS} compiled steps equal eager steps (losses, parameters, gradients) and PyTorch; state stays in place`, async () => {
      const e = trainer(rec);
      const eagerLosses: number[] = [];
      for (let i = 0; i <= STEPS; i++) eagerLosses.push(await e.stepFn().item());

      const t = trainer(rec);
      const step = torch.compile(t.stepFn);
      const params = t.model.parameters();
      const losses: number[] = [];
      for (let i = 0; i < STEPS; i++) losses.push(await step().item());
      expectLossesClose(losses, eagerLosses.slice(0, STEPS), LOSS_RTOL, 'compiled vs eager loss');
      expectLossesClose(losses, rec.losses.slice(0, STEPS), GOLDEN_RTOL, 'compiled vs PyTorch loss');
      t.model.parameters().forEach((p, i) => {
        expect(p).toBe(params[i]);
        expect(p.device).toBe('cpu');
        if (p.grad) {
          expect(p.grad.device).toBe('cpu');
          expect(() => p.grad!.toArraySync()).not.toThrow(); // a real tensor, not a traced one
        }
      });
      // the optimizer state the compiled steps left behind is eager's: one eager step continues the run
      const last = await t.stepFn().item();
      expectLossesClose([last], [eagerLosses[STEPS]], LOSS_RTOL, `eager step ${STEPS + 1} after compiled steps`);
      expectArraysClose(snapshot(t.model), snapshot(e.model), PARAM_TOL, 'parameter');
    });
  });

  it('a step whose loss is a sum compiles and trains (the seed of backward is a folded constant)', async () => {
    torch.manualSeed(3);
    const x = torch.randn(8, 10);
    const y = torch.randn(8, 3);
    const model = new torch.nn.Sequential(new torch.nn.Linear(10, 5), new torch.nn.ReLU(), new torch.nn.Linear(5, 3));
    const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
    const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
    const step = torch.compile(() => {
      const l = lossFn(model(x), y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      return l;
    });
    const first = await step().item();
    let last = first;
    for (let i = 0; i < 5; i++) last = await step().item();
    expect(Number.isFinite(first)).toBe(true);
    expect(last).toBeLessThan(first);
  });
});

describe('a compiled cpu graph, inspected', () => {
  it("graphs() lists the seed Adam step's fused kernels with their JavaScript; parameters are updated in their own arrays", async () => {
    torch.manualSeed(0);
    const { N, D_in, H, D_out } = SEED;
    const x = torch.randn(N, D_in);
    const y = torch.randn(N, D_out);
    const model = new TwoLayerNet(D_in, H, D_out);
    const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
    const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });
    const step = torch.compile(() => {
      const l = lossFn(model(x), y);
      opt.zeroGrad();
      l.backward();
      opt.step();
      return l;
    });
    const arrays = model.parameters().map((p) => p._storage);
    const before = model.parameters().map((p) => Float32Array.from(p.toArraySync()));
    await step().item();
    await step().item();
    const g = step.graphs()[step.graphs().length - 1];
    // forward + backward + Adam for 4 parameters: the 6 groups of WebGPU's plan (the same kernel IR)
    expect(g.stats.fusedKernels).toBeLessThanOrEqual(6);
    expect(g.kernels.length).toBe(g.stats.fusedKernels);
    const matmuls = g.kernels.filter((k) => k.name.includes('_mm'));
    expect(matmuls.length).toBe(5);
    expect(g.stats.matmuls.map((m) => m.variant)).toEqual(new Array(5).fill('wasm-simd'));
    for (const k of g.kernels) {
      expect(k.language).toBe('js');
      expect(k.wgsl).toBe('');
      expect(k.source).toMatch(/^\/\/ forward kernel k\d+_/);
      expect(k.source).toMatch(/fuses %\d+ /);
      expect(k.nodes.length).toBeGreaterThan(0);
    }
    for (const k of matmuls) expect(k.source).toMatch(/wasm simd matmul: %\d+ = %\d+(\^T)? @ %\d+(\^T)? \(\d+ x \d+ x \d+\)/);
    // the weights' Adam updates ride on their gradient matmuls, as a loop with the update's formulas
    const update = g.kernels.find((k) => /mmTN_.*sqrt/.test(k.name))!;
    expect(update, g.kernels.map((k) => k.name).join(', ')).toBeDefined();
    expect(update.source).toContain('Math.sqrt');
    // every fused kernel's source is plain JavaScript that compiles
    for (const k of g.kernels) for (const part of k.source.split('\n\n').filter((p) => !p.trimStart().startsWith('// wasm'))) expect(() => new Function('ins', 'outs', 'sc', part)).not.toThrow();
    // in place: the parameters keep their arrays, and the values changed
    model.parameters().forEach((p, i) => {
      expect(p._storage).toBe(arrays[i]);
      expect(relDiff(p.toArraySync(), before[i]).rel).toBeGreaterThan(0);
    });
    expect(g.fusedIR).toMatch(/\[k\d+\]/);
  });
});
