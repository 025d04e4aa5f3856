/**
 * A device that offers only 8 storage buffers per shader stage (the WebGPU default, and
 * what many GPUs and browsers give): the device is created with that limit (the context
 * honours it even where Dawn grants more), and the seed's whole Adam step must fit every
 * kernel within it and train as eager does. The binding-limit rule (passes/binding-arena.ts)
 * serves a kernel's small float buffers through one arena buffer where it would bind too
 * many, so the step keeps the fusion and the packs of a 16-binding device: 6 fused kernels
 * in 4 dispatches (8 in 6 without arenas, 12 in 7 before in-place reads stopped costing a
 * binding): a weight's Adam-fused gradient matmul with its bias update riding along writes
 * 8 buffers (both gradients, both parameters, four moments) besides its operands.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { boundBuffers, partsOf } from '../src/passes/kernel-ir.ts';
import { expectLossesClose, relDiff } from './helpers/compile-util.ts';

// this file's worker creates the device itself, before anything else asks for one
const available = await torch.webgpu.init({ limits: { maxStorageBuffersPerShaderStage: 8 } }).then(
  () => true,
  () => false,
);
const dev: torch.Device = 'webgpu';

function seedStep() {
  torch.manualSeed(3);
  const x = torch.randn(64, 1000, { device: dev });
  const y = torch.randn(64, 10, { device: dev });
  const model = new torch.nn.Sequential(new torch.nn.Linear(1000, 100), new torch.nn.ReLU(), new torch.nn.Linear(100, 10)).to(dev);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  const stepFn = () => {
    const loss = lossFn(model(x), y);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss;
  };
  return { model, optimizer, stepFn };
}

const params = (m: torch.nn.Module) => Promise.all(m.parameters().map(async (p) => Float32Array.from(await p.toArray())));
/** every tensor of the optimizer's state, in parameter order (Adam: expAvg, expAvgSq) */
const moments = (o: { stateDict(): { state: Record<number, Record<string, unknown>> } }) =>
  Promise.all(
    Object.values(o.stateDict().state).flatMap((st) =>
      Object.values(st)
        .filter((v): v is torch.Tensor => v instanceof torch.Tensor)
        .map(async (t) => Float32Array.from(await t.toArray())),
    ),
  );

async function train(steps: number, compiled: boolean) {
  const s = seedStep();
  const step = compiled ? torch.compile(s.stepFn, { autotune: false }) : s.stepFn;
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push(await step().item());
  return { ...s, step, losses };
}

afterEach(() => {
  delete process.env.WGTORCH_ARENA;
});

describe.skipIf(!available)('a device with 8 storage buffers per shader stage', () => {
  it('is created with that limit', () => {
    expect(torch.webgpu.context().limits.maxStorageBuffersPerShaderStage).toBe(8);
  });

  it('the seed Adam whole step: at most 6 fused kernels in at most 4 dispatches, each within the limit, equal to eager', async () => {
    const steps = 10;
    const eager = await train(steps, false);
    const compiled = await train(steps, true);
    const step = compiled.step as torch.Compiled<() => torch.Tensor>;
    const g = step.graphs()[0]!;
    for (const k of g.kernels) expect(boundBuffers(k.kernel), `${k.name} binds`).toBeLessThanOrEqual(8);
    expect(g.stats.fusedKernels).toBeLessThanOrEqual(6);
    expect(g.stats.dispatches).toBeLessThanOrEqual(4);
    // some kernels do bind more values than the device offers buffers: through an arena
    const withArena = g.kernels.flatMap((k) => partsOf(k.kernel)).filter((k) => k.arena);
    expect(withArena.length).toBeGreaterThan(0);
    for (const k of withArena) {
      expect(k.bindings.length, k.name).toBeGreaterThan(boundBuffers(k));
      for (const m of k.arena!.members) expect(k.bindings[m]!.dtype).toBe('float32');
    }
    expect(g.kernels.some((k) => k.kernel.bindings.length > 8), 'a kernel serves more than 8 values').toBe(true);
    // the parameter updates ride in their gradient matmuls: weights in the epilogue, biases once per row
    const matmuls = g.kernels.flatMap((k) => partsOf(k.kernel)).filter((k) => k.body.kind === 'matmul');
    const updating = matmuls.filter((k) => k.body.kind === 'matmul' && k.body.epilogue.at(-1)?.op === 'sub' && k.body.reductions.some((r) => r.epilogue.at(-1)?.op === 'sub'));
    expect(updating.length, 'weight and bias updates fused into their gradient matmuls').toBe(2);
    // equal to eager: the loss, and the state seen through the user's tensors (parameters, Adam's moments)
    expectLossesClose(compiled.losses, eager.losses, 1e-4);
    const [pe, pc] = [await params(eager.model), await params(compiled.model)];
    pc.forEach((p, i) => expect(relDiff(p, pe[i]!).rel, `parameter ${i}`).toBeLessThan(1e-4));
    const [me, mc] = [await moments(eager.optimizer), await moments(compiled.optimizer)];
    expect(mc.length).toBe(8);
    mc.forEach((m, i) => expect(relDiff(m, me[i]!).rel, `optimizer state ${i}`).toBeLessThan(1e-4));
    // one more call: the dispatches counted, and the arena's members moved by copies (not dispatches)
    torch.webgpu.resetCounters();
    await step().item();
    const c = torch.webgpu.counters();
    expect(c.dispatches).toBe(g.stats.dispatches);
    expect(c.copies).toBeGreaterThan(0);
    // every fusion decision names its rule; the arena says what it holds and why
    expect(g.fusionLog.every((l) => /^(forward|backward): \[[a-z-]+\] /.test(l)), g.fusionLog.find((l) => !/\] /.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[reduction-epilogue\] fused kernel \d+ .* into matmul kernel \d+/.test(l)), 'the bias update joins its weight-gradient matmul').toBe(true);
    expect(g.fusionLog.some((l) => /\[operand-reduction\] fused the sum %\d+ over the rows of op\(A\)/.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[arena\] bound (%\d+, )+%\d+ of k\d+_\w+ through one buffer: it would bind \d+ storage buffers, more than/.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[join\] fused %\d+ sub into kernel \d+ \(matmul epilogue\)/.test(l)), 'the weight update joins its gradient matmul').toBe(true);
  });

  it('without arenas (WGTORCH_ARENA=0) the step splits into more kernels and dispatches, and computes the same values', async () => {
    const arena = await train(5, true);
    process.env.WGTORCH_ARENA = '0';
    const plain = await train(5, true);
    const [ga, gp] = [arena.step, plain.step].map((s) => (s as torch.Compiled<() => torch.Tensor>).graphs()[0]!);
    expect(gp!.stats.fusedKernels).toBeGreaterThan(ga!.stats.fusedKernels);
    expect(gp!.stats.dispatches).toBeGreaterThan(ga!.stats.dispatches);
    expect(gp!.kernels.every((k) => partsOf(k.kernel).every((p) => !p.arena))).toBe(true);
    expect(gp!.fusionLog.some((l) => /\[reduction-epilogue\] did not fuse .*: it would bind more than the device's 8 storage buffers/.test(l))).toBe(true);
    expectLossesClose(arena.losses, plain.losses, 1e-6);
    const [pa, pp] = [await params(arena.model), await params(plain.model)];
    pa.forEach((p, i) => expect(relDiff(p, pp[i]!).rel, `parameter ${i}`).toBeLessThan(1e-6));
  });

  it('after compiled steps the parameters save and load as eager ones do (stateDict, safetensors)', async () => {
    const eager = await train(3, false);
    const compiled = await train(3, true);
    const [be, bc] = [await torch.saveAsync(eager.model.stateDict()), await torch.saveAsync(compiled.model.stateDict())];
    const [le, lc] = [torch.load(be), torch.load(bc)];
    expect(Object.keys(lc)).toEqual(Object.keys(le));
    for (const k of Object.keys(le)) {
      expect(lc[k]!.shape, k).toEqual(le[k]!.shape);
      expect(relDiff(lc[k]!.toArraySync() as Float32Array, le[k]!.toArraySync() as Float32Array).rel, k).toBeLessThan(1e-4);
    }
    // loaded back into the compiled model, the next compiled step starts from the loaded values
    compiled.model.loadStateDict(le);
    eager.model.loadStateDict(le);
    const next = [await compiled.step().item(), await eager.stepFn().item()];
    expect(Math.abs(next[0]! - next[1]!) / Math.abs(next[1]!)).toBeLessThan(1e-4);
  });

  it('the device cannot be re-created with other limits', async () => {
    await expect(torch.webgpu.init({ limits: { maxStorageBuffersPerShaderStage: 10 } })).rejects.toThrow(/already created with limits/);
  });
});
