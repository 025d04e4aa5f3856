/**
 * Binding arenas rendered for every kernel kind: with WGTORCH_ARENA=force every kernel with
 * two or more small float buffers binds them through one arena (needed or not), so the WGSL
 * generators' arena paths (elementwise, reduction, matmul prologue, epilogue (scalar and
 * vec4), operand reductions, vec4 elementwise with members read in groups and once per group) all run; the results must equal those of the same step compiled with
 * a buffer per binding (WGTORCH_ARENA=0).
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { boundBuffers, partsOf, type Kernel } from '../src/passes/kernel-ir.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { renderedBody } from '../src/codegen-wgsl/render.ts';
import { expectLossesClose, relDiff } from './helpers/compile-util.ts';

const dev: torch.Device = 'webgpu';

function mlpStep(opt: 'adam' | 'sgd', clip: boolean) {
  torch.manualSeed(11);
  const model = new torch.nn.Sequential(new torch.nn.Linear(16, 32), new torch.nn.ReLU(), new torch.nn.Linear(32, 8)).to(dev);
  const x = torch.randn(8, 16, { device: dev });
  const y = torch.randn(8, 8, { device: dev });
  const optimizer = opt === 'adam' ? new torch.optim.Adam(model.parameters(), { lr: 1e-2 }) : new torch.optim.SGD(model.parameters(), { lr: 1e-2, momentum: 0.9 });
  const stepFn = () => {
    // with clipping, also a softmax and a max over the output (more reductions); without, the seed's loss, whose bias gradients ride in their weight gradient's matmul
    const out = model(x);
    const loss = clip ? torch.nn.functional.mseLoss(out, y).add(out.softmax(-1).max()) : torch.nn.functional.mseLoss(out, y, { reduction: 'sum' });
    optimizer.zeroGrad();
    loss.backward();
    if (clip) torch.nn.utils.clipGradNorm_(model.parameters(), 0.5);
    optimizer.step();
    return loss;
  };
  return { model, stepFn };
}

async function run(mode: 'force' | '0', opt: 'adam' | 'sgd', clip: boolean) {
  process.env.WGTORCH_ARENA = mode;
  const { model, stepFn } = mlpStep(opt, clip);
  const step = torch.compile(stepFn, { autotune: false });
  const losses: number[] = [];
  for (let i = 0; i < 3; i++) losses.push(await step().item());
  const params = await Promise.all(model.parameters().map(async (p) => Float32Array.from(await p.toArray())));
  const g = step.graphs()[0]!;
  console.log(`arena ${mode} ${opt}${clip ? ' clipped' : ''}: ${g.stats.fusedKernels} fused kernels, ${g.stats.dispatches} dispatches`);
  return { losses, params, kernels: g.kernels.flatMap((k) => partsOf(k.kernel)), matmuls: g.stats.matmuls };
}

afterEach(() => {
  delete process.env.WGTORCH_ARENA;
});

describe.skipIf(!webgpuAvailable)('binding arenas in every kernel kind', () => {
  it('forced arenas compute what a buffer per binding computes (Adam with clipGradNorm_, SGD with momentum)', async () => {
    const seen = new Set<string>();
    for (const [opt, clip] of [['adam', true], ['sgd', false]] as const) {
      const forced = await run('force', opt, clip);
      const plain = await run('0', opt, clip);
      expect(plain.kernels.every((k) => !k.arena)).toBe(true);
      const withArena = forced.kernels.filter((k) => k.arena);
      expect(withArena.length, opt).toBeGreaterThan(0);
      for (const k of withArena) {
        expect(boundBuffers(k), k.name).toBe(k.bindings.length - k.arena!.members.length + 1);
        const b = k.body;
        seen.add(b.kind);
        // an elementwise kernel reads its arena as vec4 where it is vec4 (codegen-wgsl/elementwise-vec4.ts)
        if (b.kind === 'elementwise' && (renderedBody(k) as typeof b).vec === 4) {
          seen.add('elementwise vec4');
          const members = new Set(k.arena!.members);
          let slot = 0;
          b.inputs.forEach((x) => {
            if (x.access === 'alias') return;
            if (members.has(slot) && x.access === 'strided' && x.strides![x.strides!.length - 1] === 0) seen.add('elementwise vec4 member read once per group');
            slot++;
          });
        }
        if (b.kind === 'matmul') {
          const members = new Set(k.arena!.members);
          if (b.prologueA.length || b.prologueB.length) seen.add('matmul prologue');
          if (b.reductions.some((r) => r.outputs.length)) seen.add('matmul operand reduction');
          const vec4 = forced.matmuls.find((m) => m.kernel === k.name)?.variant.includes('vec4');
          // outputs[1..] are bindings 3 + reads.length .. : an epilogue output in the arena
          const epiOut = b.outputs.slice(1).some((_, j) => members.has(3 + b.reads.length + j));
          if (epiOut) seen.add(vec4 ? 'matmul vec4 epilogue' : 'matmul epilogue');
        }
      }
      expectLossesClose(forced.losses, plain.losses, 1e-6);
      forced.params.forEach((p, i) => expect(relDiff(p, plain.params[i]!).rel, `${opt} parameter ${i}`).toBeLessThan(1e-6));
    }
    console.log(`arena paths run: ${[...seen].join(', ')}`);
    for (const kind of ['elementwise', 'elementwise vec4', 'elementwise vec4 member read once per group', 'reduce', 'matmul', 'matmul operand reduction', 'matmul vec4 epilogue']) expect([...seen], kind).toContain(kind);
  }, 600_000);
});

export type { Kernel };
