/**
 * Whole-step compile (issue 6): loss + zeroGrad + backward + optimizer.step traced into one
 * graph. For each optimizer of API.md, 20 compiled steps equal 20 eager steps on the golden
 * inputs (losses, final parameters, last gradients), the optimizer state the compiled steps
 * leave behind is the state eager mode would have, and a compiled step issues one submit
 * and the dispatches its stats report.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { expectLossesClose, relDiff, resetWaitEstimator } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { golden, input, makeOptimizer, makeSequential, type TrainRec } from './helpers/golden.ts';

const dev: torch.Device = 'webgpu';
const STEPS = 20;
const LOSS_RTOL = 1e-5;
const PARAM_TOL = 1e-4;
/** the tolerance of test/golden-parity.test.ts */
const GOLDEN_RTOL = 2e-5;

const records: [string, TrainRec][] = [
  ['SGD with momentum', golden.c],
  ['Adam', golden.b],
  ['AdamW', golden.e.adamw],
  ['RMSprop', golden.e.rmsprop],
  ['Adagrad', golden.e.adagrad],
];

interface Trainer {
  model: torch.nn.Module;
  opt: torch.optim.Optimizer<object>;
  /** one training step as the user writes it */
  stepFn: () => torch.Tensor;
}

function trainer(rec: TrainRec): Trainer {
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

const snapshot = (m: torch.nn.Module): Promise<Float32Array[]> => Promise.all(m.parameters().map(async (p) => Float32Array.from(await p.toArray())));
const gradsOf = (m: torch.nn.Module): Promise<(Float32Array | null)[]> =>
  Promise.all(m.parameters().map(async (p) => (p.grad ? Float32Array.from(await p.grad.toArray()) : null)));

function expectArraysClose(got: (ArrayLike<number> | null)[], want: (ArrayLike<number> | null)[], tol: number, what: string) {
  expect(got.length).toBe(want.length);
  want.forEach((w, i) => {
    if (w === null) return void expect(got[i], `${what} ${i} is null in eager mode`).toBeNull();
    expect(got[i], `${what} ${i}`).not.toBeNull();
    const d = relDiff(got[i]!, w);
    expect(d.rel, `${what} ${i}: ${d.detail}`).toBeLessThanOrEqual(tol);
  });
}

/** The eager reference, STEPS + 1 steps, computed once per optimizer. */
const eagerRuns = new Map<string, Promise<{ losses: number[]; params20: Float32Array[]; grads20: (Float32Array | null)[]; params21: Float32Array[] }>>();
function eagerRun(name: string, rec: TrainRec) {
  if (!eagerRuns.has(name)) {
    eagerRuns.set(
      name,
      (async () => {
        const t = trainer(rec);
        const losses: number[] = [];
        let params20: Float32Array[] = [];
        let grads20: (Float32Array | null)[] = [];
        for (let i = 0; i <= STEPS; i++) {
          losses.push(await t.stepFn().item());
          if (i === STEPS - 1) {
            params20 = await snapshot(t.model);
            grads20 = await gradsOf(t.model);
          }
        }
        return { losses, params20, grads20, params21: await snapshot(t.model) };
      })(),
    );
  }
  return eagerRuns.get(name)!;
}

describe.skipIf(!webgpuAvailable)('whole training step compiled into one graph', () => {
  // BUG 7 workaround (see resetWaitEstimator)
  beforeEach(() => resetWaitEstimator());

  describe.each(records)('%s', (name, rec) => {
    it(`${STEPS} compiled steps equal ${STEPS} eager steps (losses, parameters, last gradients) and PyTorch's losses`, async () => {
      const eager = await eagerRun(name, rec);
      const t = trainer(rec);
      const step = torch.compile(t.stepFn);
      const params = t.model.parameters();
      const losses: number[] = [];
      for (let i = 0; i < STEPS; i++) {
        const loss = step();
        expect(loss).toBeInstanceOf(torch.Tensor);
        losses.push(await loss.item());
      }
      expectLossesClose(losses, eager.losses.slice(0, STEPS), LOSS_RTOL, 'compiled vs eager loss');
      expectLossesClose(losses, rec.losses.slice(0, STEPS), GOLDEN_RTOL, 'compiled vs PyTorch loss');
      expectArraysClose(await snapshot(t.model), eager.params20, PARAM_TOL, 'parameter');
      expectArraysClose(await gradsOf(t.model), eager.grads20, PARAM_TOL, 'gradient');
      // updated in place: the model still holds the same parameter tensors
      t.model.parameters().forEach((p, i) => expect(p).toBe(params[i]));
      // compiled: one graph (plus a first-step graph where the optimizer state starts empty), then hits
      const info = step.cacheInfo();
      expect(info.misses, JSON.stringify(info)).toBeLessThanOrEqual(2);
      expect(info.hits + info.misses).toBe(STEPS);
      const g = step.graphs()[step.graphs().length - 1];
      expect(g.backwardIR, 'the step is one graph: backward is inside it').toBeNull();
      expect(g.forwardIR).toMatch(/= mm /);
    });

    it('the optimizer state the compiled steps leave is the eager state: an eager step afterwards continues the same run', async () => {
      const eager = await eagerRun(name, rec);
      const t = trainer(rec);
      const step = torch.compile(t.stepFn);
      for (let i = 0; i < STEPS; i++) step();
      const last = await t.stepFn().item(); // eager, reading the momentum / m, v / square averages / step count
      expectLossesClose([last], [eager.losses[STEPS]], LOSS_RTOL, `eager step ${STEPS + 1} after compiled steps`);
      expectArraysClose(await snapshot(t.model), eager.params21, PARAM_TOL, 'parameter after the eager step');
    });

    it('a compiled step issues exactly one submit (with the loss read) and the dispatches its stats report', async () => {
      const t = trainer(rec);
      const step = torch.compile(t.stepFn);
      for (let i = 0; i < 3; i++) await step().item(); // compiled and warm
      const before = step.graphs().map((g) => g.calls);
      await torch.webgpu.synchronize();
      torch.webgpu.resetCounters();
      const loss = step();
      await loss.item();
      const c = torch.webgpu.counters();
      const ran = step.graphs().filter((g, i) => g.calls > (before[i] ?? 0));
      expect(ran.length, 'one cached graph ran').toBe(1);
      const stats = ran[0].stats;
      expect(c.submits, JSON.stringify(c)).toBe(1);
      expect(c.pipelinesCompiled, 'no pipeline compiles on a warm step').toBe(0);
      expect(c.dispatches, `dispatches ${c.dispatches} vs stats ${JSON.stringify(stats)}`).toBe(stats.dispatches);
    });
  });
});
