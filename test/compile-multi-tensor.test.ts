/**
 * The optimizer update of a model with many small parameter tensors, compiled in a whole
 * step (loss, backward, clipGradNorm_, Adam): each parameter shape's update is one fused
 * kernel, and with binding arenas (passes/binding-arena.ts) those kernels share one or two
 * dispatches as packs, each part binding its parameter, moments and gradient through one
 * arena buffer. Without arenas a pack holds only as many updates as their four or so buffers
 * each leave room for in the device's limit. Equal to eager: losses, parameters, Adam's state.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { partsOf, type Kernel } from '../src/passes/kernel-ir.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { expectLossesClose, relDiff } from './helpers/compile-util.ts';

const dev: torch.Device = 'webgpu';
/** 6 layers of distinct shapes: 12 parameter tensors, no two of one shape */
const WIDTHS = [6, 7, 8, 9, 10, 11, 5];
/** lavapipe compiles each new pipeline with LLVM at its first dispatch: seconds on a busy machine */
const SLOW = 600_000;

function manyParams() {
  torch.manualSeed(5);
  const layers: torch.nn.Module<[torch.Tensor], torch.Tensor>[] = [];
  for (let i = 0; i + 1 < WIDTHS.length; i++) {
    layers.push(new torch.nn.Linear(WIDTHS[i]!, WIDTHS[i + 1]!));
    if (i + 2 < WIDTHS.length) layers.push(new torch.nn.Tanh());
  }
  const model = new torch.nn.Sequential(...layers).to(dev);
  const x = torch.randn(16, WIDTHS[0]!, { device: dev });
  const y = torch.randn(16, WIDTHS.at(-1)!, { device: dev });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
  const stepFn = () => {
    const loss = torch.nn.functional.mseLoss(model(x), y);
    optimizer.zeroGrad();
    loss.backward();
    torch.nn.utils.clipGradNorm_(model.parameters(), 0.5);
    optimizer.step();
    return loss;
  };
  return { model, optimizer, stepFn };
}

async function train(steps: number, compiled: boolean) {
  const s = manyParams();
  const step = compiled ? torch.compile(s.stepFn, { autotune: false }) : s.stepFn;
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push(await step().item());
  return { ...s, step: step as torch.Compiled<() => torch.Tensor>, losses };
}

/** an Adam update: an elementwise kernel with a square root that updates values in place (a parameter, its moments) */
const isUpdate = (k: Kernel) => k.body.kind === 'elementwise' && k.body.nodes.some((n) => n.op === 'sqrt') && k.body.inputs.some((x) => x.access === 'alias');

function updateCost(step: torch.Compiled<() => torch.Tensor>) {
  const g = step.graphs()[0]!;
  const parts = g.kernels.flatMap((k) => partsOf(k.kernel)).filter(isUpdate);
  const dispatches = g.kernels.filter((k) => partsOf(k.kernel).some(isUpdate)).length;
  return { parts: parts.length, dispatches, total: g.stats.dispatches, arenas: parts.filter((p) => p.arena).length };
}

const tensors = async (ts: torch.Tensor[]) => Promise.all(ts.map(async (t) => Float32Array.from(await t.toArray())));
const adamState = (o: torch.optim.Adam) =>
  Object.values(o.stateDict().state).flatMap((st) => Object.values(st).filter((v): v is torch.Tensor => v instanceof torch.Tensor));

afterEach(() => {
  delete process.env.WGTORCH_ARENA;
});

describe.skipIf(!webgpuAvailable)('multi-tensor optimizer updates on webgpu', () => {
  it('12 parameters of 12 shapes: their updates in at most 2 dispatches, equal to eager (losses, parameters, optimizer state)', async () => {
    const steps = 4;
    const eager = await train(steps, false);
    const compiled = await train(steps, true);
    const cost = updateCost(compiled.step);
    expect(cost.parts, 'one update kernel per parameter shape').toBe(12);
    expect(cost.dispatches).toBeLessThanOrEqual(2);
    expect(cost.arenas).toBeGreaterThan(0);
    expectLossesClose(compiled.losses, eager.losses, 1e-5);
    const [pe, pc] = [await tensors(eager.model.parameters()), await tensors(compiled.model.parameters())];
    pc.forEach((p, i) => expect(relDiff(p, pe[i]!).rel, `parameter ${i}`).toBeLessThan(1e-4));
    const [se, sc] = [await tensors(adamState(eager.optimizer)), await tensors(adamState(compiled.optimizer))];
    expect(sc.length).toBe(24);
    sc.forEach((m, i) => expect(relDiff(m, se[i]!).rel, `optimizer state ${i}`).toBeLessThan(1e-4));
    // the dispatches its stats report are the dispatches it makes
    torch.webgpu.resetCounters();
    await compiled.step().item();
    expect(torch.webgpu.counters().dispatches).toBe(compiled.step.graphs()[0]!.stats.dispatches);
  }, SLOW);

  it('without arenas (WGTORCH_ARENA=0) the same updates take more dispatches and compute the same values', async () => {
    const arena = await train(3, true);
    process.env.WGTORCH_ARENA = '0';
    const plain = await train(3, true);
    const [a, p] = [updateCost(arena.step), updateCost(plain.step)];
    console.log(`12 parameter updates: ${a.dispatches} dispatches with arenas (step ${a.total}), ${p.dispatches} without (step ${p.total})`);
    expect(p.arenas).toBe(0);
    expect(p.dispatches).toBeGreaterThan(a.dispatches);
    expect(p.total).toBeGreaterThan(a.total);
    expectLossesClose(arena.losses, plain.losses, 1e-6);
    const [pa, pp] = [await tensors(arena.model.parameters()), await tensors(plain.model.parameters())];
    pa.forEach((x, i) => expect(relDiff(x, pp[i]!).rel, `parameter ${i}`).toBeLessThan(1e-6));
  }, SLOW);
});
