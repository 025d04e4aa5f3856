/**
 * A device that offers only 8 storage buffers per shader stage (the WebGPU default, and
 * what many GPUs and browsers give): the device is created with that limit (the context
 * honours it even where Dawn grants more), and the seed's whole Adam step must fit every
 * kernel within it and train as eager does. It takes 8 fused kernels in 6 dispatches
 * (12 in 7 before in-place reads stopped costing a binding); the 6 kernels of a 16-binding
 * device are out of reach at 8: a weight's Adam-fused gradient matmul with its bias update
 * riding along writes 8 buffers (both gradients, both parameters, four moments) besides
 * its operands.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { partsOf } from '../src/passes/kernel-ir.ts';
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
  return { model, stepFn };
}

const params = (m: torch.nn.Module) => Promise.all(m.parameters().map(async (p) => Float32Array.from(await p.toArray())));

describe.skipIf(!available)('a device with 8 storage buffers per shader stage', () => {
  it('is created with that limit', () => {
    expect(torch.webgpu.context().limits.maxStorageBuffersPerShaderStage).toBe(8);
  });

  it('the seed Adam whole step: at most 8 fused kernels in at most 6 dispatches, each within the limit, equal to eager', async () => {
    const steps = 10;
    const eager = seedStep();
    const eagerLosses: number[] = [];
    for (let i = 0; i < steps; i++) eagerLosses.push(await eager.stepFn().item());
    const compiled = seedStep();
    const step = torch.compile(compiled.stepFn, { autotune: false });
    const losses: number[] = [];
    for (let i = 0; i < steps; i++) losses.push(await step().item());
    const g = step.graphs()[0]!;
    for (const k of g.kernels) expect(k.kernel.bindings.length, `${k.name} binds`).toBeLessThanOrEqual(8);
    expect(g.stats.fusedKernels).toBeLessThanOrEqual(8);
    expect(g.stats.dispatches).toBeLessThanOrEqual(6);
    // the parameter updates ride in their gradient matmuls: their old values are read in place, at no binding
    const matmuls = g.kernels.flatMap((k) => partsOf(k.kernel)).filter((k) => k.body.kind === 'matmul');
    const updating = matmuls.filter((k) => k.body.kind === 'matmul' && k.body.epilogue.at(-1)?.op === 'sub' && k.body.inputs.some((x) => x.at === 'alias'));
    expect(updating.length, 'weight updates fused into their gradient matmuls').toBe(2);
    expectLossesClose(losses, eagerLosses, 1e-4);
    const [pe, pc] = [await params(eager.model), await params(compiled.model)];
    pc.forEach((p, i) => expect(relDiff(p, pe[i]!).rel, `parameter ${i}`).toBeLessThan(1e-4));
    torch.webgpu.resetCounters();
    await step().item();
    expect(torch.webgpu.counters().dispatches).toBe(g.stats.dispatches);
    // every fusion decision names its rule; on this device the bias updates are refused by the binding limit
    expect(g.fusionLog.every((l) => /^(forward|backward): \[[a-z-]+\] /.test(l)), g.fusionLog.find((l) => !/\] /.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[reduction-epilogue\] did not fuse .*: it would bind more than the device's 8 storage buffers/.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[operand-reduction\] fused the sum %\d+ over the rows of op\(A\)/.test(l))).toBe(true);
    expect(g.fusionLog.some((l) => /\[join\] fused %\d+ sub into kernel \d+ \(matmul epilogue\)/.test(l)), 'the weight update joins its gradient matmul').toBe(true);
  });

  it('the device cannot be re-created with other limits', async () => {
    await expect(torch.webgpu.init({ limits: { maxStorageBuffersPerShaderStage: 10 } })).rejects.toThrow(/already created with limits/);
  });
});
