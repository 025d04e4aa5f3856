/**
 * Horizontal packing (src/compile/pack-schedule.ts, src/codegen-wgsl/pack.ts): independent
 * kernels share one dispatch. Packed plans must compute exactly what the unpacked plan
 * computes; the seed Adam step must take 4 dispatches in 1 submit; an in-place update
 * renamed so that its old value's readers can share its dispatch must land in the tensor
 * it updates without leaking buffers.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { kernelShape, packKernels } from '../src/codegen-wgsl/pack.ts';
import { renderKernel } from '../src/codegen-wgsl/render.ts';
import { printKernel, type Kernel } from '../src/passes/kernel-ir.ts';
import { optimize } from '../src/compile/optimize.ts';
import { GpuStorage } from '../src/runtime/webgpu/backend.ts';
import { deviceError, interpretOutputs, interpreterBinding, relDiff, runGpuPlan } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';

const dev: torch.Device = 'webgpu';

function seedStep(opt: 'adam' | 'sgd' = 'adam') {
  torch.manualSeed(3);
  const x = torch.randn(64, 1000, { device: dev });
  const y = torch.randn(64, 10, { device: dev });
  const model = new torch.nn.Sequential(new torch.nn.Linear(1000, 100), new torch.nn.ReLU(), new torch.nn.Linear(100, 10)).to(dev);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer =
    opt === 'adam' ? new torch.optim.Adam(model.parameters(), { lr: 1e-3 }) : new torch.optim.SGD(model.parameters(), { lr: 1e-4, momentum: 0.9 });
  const stepFn = () => {
    const loss = lossFn(model(x), y);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss;
  };
  return { model, stepFn };
}

async function withPacking<R>(on: boolean, fn: () => Promise<R>): Promise<R> {
  const old = process.env.WGTORCH_PACK;
  process.env.WGTORCH_PACK = on ? '1' : '0';
  try {
    return await fn();
  } finally {
    if (old === undefined) delete process.env.WGTORCH_PACK;
    else process.env.WGTORCH_PACK = old;
  }
}

const params = (m: torch.nn.Module) => Promise.all(m.parameters().map(async (p) => Float32Array.from(await p.toArray())));

describe('packKernels: the WGSL of a pack, rendered from the kernel IR', () => {
  // out0 = in0 * 1e-5 + $0 over n elements: kernel IR values, as the fusion pass builds them
  const kernel = (name: string, n: number): Kernel => ({
    name,
    body: {
      kind: 'elementwise',
      shape: [n],
      inputs: [{ dtype: 'float32', access: 'direct' }],
      scalars: 1,
      nodes: [
        { op: 'mul', args: [{ kind: 'input', index: 0 }, { kind: 'scalar', index: 0 }], attrs: {} },
        { op: 'add', args: [{ kind: 'node', index: 0 }, { kind: 'scalar', index: 0 }], attrs: {} },
      ],
      outputs: [{ ref: { kind: 'node', index: 1 }, dtype: 'float32' }],
    },
    bindings: [
      { value: 1, dtype: 'float32', access: 'read' },
      { value: 2, dtype: 'float32', access: 'write' },
    ],
    scalars: [3],
    covers: { nodes: [2], scopes: [] },
    bytes: 0,
    flops: 0,
  });
  it('prefixes module-scope names but not locals or struct fields; renumbers bindings; rebuilds builtins per part', () => {
    const pack = packKernels([renderKernel(kernel('a', 3 * 64)), renderKernel(kernel('b', 5 * 64))]);
    const code = pack.code;
    expect(code).toContain('struct p0_Params { v: array<vec4<u32>, 1> }'); // the field keeps its name
    expect(code).toContain('fn p0_P(i: u32) -> u32 { return p0_p.v[i / 4u][i % 4u]; }');
    expect(code).toContain('let x0 = f32(p1_in0[i]);'); // locals keep their names
    expect(code).toMatch(/@binding\(0\) var<storage, read> p0_in0/);
    expect(code).toMatch(/@binding\(1\) var<storage, read_write> p0_out0/);
    expect(code).toMatch(/@binding\(2\) var<storage, read> p1_in0/);
    expect(code).toMatch(/@binding\(3\) var<storage, read_write> p1_out0/);
    expect(code).toMatch(/@binding\(4\) var<uniform> p0_p/);
    expect(code).toMatch(/@binding\(5\) var<uniform> p1_p/);
    expect(code).toContain('fn p1_main(gid: vec3<u32>, nwg: vec3<u32>) {');
    expect(code).toContain('p1_main(wid * vec3<u32>(64u, 1u, 1u) + lid, vec3<u32>(5u, 1u, 1u));'); // its own grid
    expect(code).toContain('if (pk_f < 3u) { p0_run(pk_f - 0u, pk_li); return; }');
    expect(code).toContain('if (pk_f < 8u) { p1_run(pk_f - 3u, pk_li); return; }');
    expect(code.match(/fn wgt_isnan/g)?.length, 'the shared prelude once').toBe(1);
    // the layout and the kernel IR of the pack come from its parts, not from its code
    expect(pack.layout.storage).toEqual(['read', 'read_write', 'read', 'read_write']);
    expect(pack.layout.uniforms).toBe(2);
    expect(pack.kernel.body.kind).toBe('pack');
    expect(pack.kernel.bindings.map((b) => b.value)).toEqual([1, 2, 1, 2]);
    expect(pack.kernel.scalars).toEqual([3, 3]);
    expect(printKernel(pack.kernel)).toMatch(/kernel pack\(a \+ b\): pack of 2 independent kernels\n {2}kernel a: elementwise over \[192\]/);
  });
});

describe.skipIf(!webgpuAvailable)('packing independent kernels into one dispatch', () => {
  it('the seed Adam step runs its 6 fused kernels in 4 dispatches and 1 submit, packs listed with their parts', async () => {
    const { stepFn } = seedStep();
    const step = torch.compile(stepFn);
    for (let i = 0; i < 3; i++) await step().item();
    const g = step.graphs()[0]!;
    expect(g.stats.fusedKernels).toBe(6);
    expect(g.stats.dispatches).toBe(4);
    expect(g.stats.kernels).toBe(g.kernels.length);
    const packs = g.kernels.filter((k) => k.parts);
    expect(packs.length).toBe(2);
    for (const p of packs) {
      expect(p.parts!.length).toBeGreaterThan(1);
      for (const name of p.parts!) expect(p.wgsl).toContain(`part ${p.parts!.indexOf(name)}: ${name}`); // each part's code is labelled in the shader
      expect(p.nodes.length).toBeGreaterThan(0);
    }
    expect(g.fusionLog.some((l) => l.includes('pack:'))).toBe(true);
    expect(g.fusionLog.some((l) => l.includes('rename %'))).toBe(true);
    await torch.webgpu.synchronize();
    torch.webgpu.resetCounters();
    await step().item();
    const c = torch.webgpu.counters();
    expect(c.submits).toBe(1);
    expect(c.dispatches).toBe(4);
  });

  it('packed steps compute exactly what unpacked steps compute (Adam and SGD with momentum, 10 steps, bitwise)', async () => {
    for (const opt of ['adam', 'sgd'] as const) {
      const run = (on: boolean) =>
        withPacking(on, async () => {
          const { model, stepFn } = seedStep(opt);
          const step = torch.compile(stepFn);
          const losses: number[] = [];
          for (let i = 0; i < 10; i++) losses.push(await step().item());
          return { losses, params: await params(model), dispatches: step.graphs()[0]!.stats.dispatches };
        });
      const packed = await run(true);
      const plain = await run(false);
      expect(packed.dispatches, opt).toBeLessThan(plain.dispatches);
      expect(packed.losses, opt).toEqual(plain.losses);
      packed.params.forEach((p, i) => expect(relDiff(p, plain.params[i]!).rel, `${opt} parameter ${i}`).toBe(0));
    }
  });

  it.each([
    ['with the memory plan: the replaced buffer is the spare the next step computes into', true],
    ['without it (WGTORCH_MEMPLAN=0): the replaced buffer goes back to the pool', false],
  ])('a renamed in-place update lands in the parameter tensor (its buffer is swapped, not copied) and leaks nothing, %s', async (_what, memplan) => {
    const { model, stepFn } = seedStep();
    const step = torch.compile(stepFn);
    if (!memplan) process.env.WGTORCH_MEMPLAN = '0'; // read when the first call builds the plan
    try {
      for (let i = 0; i < 3; i++) await step().item();
    } finally {
      delete process.env.WGTORCH_MEMPLAN;
    }
    const renamed = step.graphs()[0]!.fusionLog.filter((l) => l.includes('rename %')).length;
    expect(renamed).toBeGreaterThan(0);
    const w2 = model.parameters()[2]!;
    const storage = w2._storage as GpuStorage;
    expect(storage).toBeInstanceOf(GpuStorage);
    const before = storage.buffer;
    const valuesBefore = Float32Array.from(await w2.toArray());
    await step().item();
    expect(w2._storage, 'the tensor keeps its storage object').toBe(storage);
    expect(storage.buffer, 'which now holds the buffer the packed kernel wrote').not.toBe(before);
    const valuesAfter = Float32Array.from(await w2.toArray());
    expect(relDiff(valuesAfter, valuesBefore).rel).toBeGreaterThan(0);
    const live = (torch.webgpu.context().pool as unknown as { live: Map<GPUBuffer, number> }).live;
    expect(live.has(storage.buffer), 'the adopted buffer is live').toBe(true);
    if (memplan) {
      // the plan keeps the replaced buffer (live, not leaked: it goes back when the plan does) and computes the next update into it,
      // so the tensor alternates between two buffers and the bind groups of both hit
      expect(live.has(before), 'the replaced buffer is the plan\'s spare').toBe(true);
      await step().item();
      expect(storage.buffer, 'the next step lands in the spare').toBe(before);
    } else {
      // the old buffer went back to the pool (not leaked, not still held), the new one is held once
      expect(live.has(before), 'the replaced buffer is released to the pool').toBe(false);
    }
    // and many steps on, buffers cycle without a double release (which throws)
    for (let i = 0; i < 20; i++) await step().item();
    expect(await deviceError()).toBeNull();
  });

  it('a reduction (with workgroup barriers), an elementwise kernel over a 2-D-folded grid and a matmul share one dispatch, equal to the interpreter', async () => {
    torch.manualSeed(11);
    const big = 70_000 * 64 + 5; // more workgroups than one grid dimension holds
    const t = torch.trace(
      // a.sum(0), not a.sum(1): a sum along K of the matmul's A operand would ride in the matmul ([operand-reduction])
      (a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) => [a.sum(0), b.mul(2).add(1), a.matmul(w)],
      torch.randn(37, 45),
      torch.randn(big),
      torch.randn(45, 19),
    );
    const g = optimize(t.graph);
    const bind = interpreterBinding(t.program);
    const want = await interpretOutputs(g, bind);
    const packed = await runGpuPlan(g, bind);
    expect(await deviceError()).toBeNull();
    const plain = await runGpuPlan(g, bind, { pack: false });
    expect(plain.plan.kernels.length).toBe(3);
    expect(packed.plan.kernels.length).toBe(1);
    expect(packed.plan.kernels[0]!.parts!.map((k) => k.kind).sort()).toEqual(['elementwise', 'matmul', 'reduce']);
    want.forEach((w, i) => {
      expect(relDiff(packed.outputs[i]!, w).rel, `output ${i}`).toBeLessThan(1e-5);
      expect(relDiff(packed.outputs[i]!, plain.outputs[i]!).rel, `output ${i} vs unpacked`).toBe(0);
    });
  });

  it('dependent kernels are never packed together, and kernels of different workgroup sizes stay apart', async () => {
    torch.manualSeed(12);
    const t = torch.trace((a: torch.Tensor, w: torch.Tensor) => a.matmul(w).sum(0), torch.randn(16, 8), torch.randn(8, 12));
    const { plan } = await runGpuPlan(optimize(t.graph), interpreterBinding(t.program));
    expect(plan.kernels.every((k) => !k.parts)).toBe(true);
    // the packer refuses mismatched workgroup sizes outright
    const k = plan.fused[0]!;
    const other = { ...k, layout: { ...k.layout, workgroupSize: [32, 1, 1] as [number, number, number] } };
    expect(kernelShape(other).invocations).toBe(32);
    expect(() => packKernels([k, other])).toThrow(/workgroup size/);
  });

  it('module-scope names of the parts never collide: every part keeps its own params, helpers and bindings', async () => {
    torch.manualSeed(13);
    const t = torch.trace((a: torch.Tensor, b: torch.Tensor) => [a.exp().sum(), b.abs().sum()], torch.randn(300), torch.randn(200));
    const { plan, outputs } = await runGpuPlan(optimize(t.graph), interpreterBinding(t.program));
    expect(await deviceError()).toBeNull();
    expect(plan.kernels.length).toBe(1);
    const code = plan.kernels[0]!.code;
    expect(code).toMatch(/var<uniform> p0_p: p0_Params/);
    expect(code).toMatch(/var<uniform> p1_p: p1_Params/);
    expect(code.match(/fn wgt_isnan/g)?.length, 'the shared prelude once').toBe(1);
    const want = await interpretOutputs(optimize(t.graph), interpreterBinding(t.program));
    want.forEach((w, i) => expect(relDiff(outputs[i]!, w).rel).toBeLessThan(1e-5));
  });
});
