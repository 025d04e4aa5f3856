/**
 * The cpu target renders the kernel IR alone: one builder of kernels (passes/kernel-build.ts),
 * two renderers. The cpu plan's kernels are the very Kernel values the WebGPU plan renders
 * to WGSL (same printed form), every cpu step reads and writes only its kernel's bindings
 * (or scratch of its own), and the rendered steps compute what the reference interpreter does.
 * No device needed: the WebGPU plan below is built (fused, lowered, rendered) without running.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { CpuPlan } from '../src/compile/cpu-plan.ts';
import { GpuPlan } from '../src/compile/gpu-plan.ts';
import { takeChecks } from '../src/compile/checks.ts';
import { optimize } from '../src/compile/optimize.ts';
import type { Graph } from '../src/ir/graph.ts';
import { printKernel } from '../src/passes/kernel-ir.ts';
import type { Storage } from '../src/runtime/backend.ts';
import type { WebGPUBackend } from '../src/runtime/webgpu/backend.ts';
import { Tensor } from '../src/eager/tensor.ts';
import { interpretOutputs, interpreterBinding, relDiff } from './helpers/compile-util.ts';

/** A WebGPU plan built without a device: fusion, kernel IR and WGSL need only the limits. */
function gpuPlanWithoutDevice(g: Graph): GpuPlan {
  const limits = { maxStorageBuffersPerShaderStage: 1 << 20, maxComputeWorkgroupsPerDimension: 65535, maxUniformBuffersPerShaderStage: 12 };
  return new GpuPlan(g, { ctx: { limits } } as unknown as WebGPUBackend, new Map(), { pack: false });
}

/** Forward and backward of a net whose kernels cover every body kind: matmuls with prologue, epilogue and row sums, reductions, copies, index ops. */
function traced() {
  torch.manualSeed(3);
  const x = torch.randn(6, 10);
  const w1 = torch.randn(12, 10, { requiresGrad: true });
  const b1 = torch.randn(12, { requiresGrad: true });
  const w2 = torch.randn(5, 8, { requiresGrad: true });
  const emb = torch.randn(7, 5, { requiresGrad: true });
  const idx = torch.tensor([1, 4, 4, 0, 6, 2], { dtype: 'int32' });
  const fn = (x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, emb: torch.Tensor) => {
    const h = x.matmul(w1.t()).add(b1).relu(); // matmul + bias + relu epilogue; backward: bias row sums
    const s = h.narrow(1, 2, 8); // a slice (an index op)
    const y = s.matmul(w2.t()).tanh(); // [6, 5]
    const e = emb.index(idx); // a gather, and scatterAdd in backward
    const z = y.mul(e).logSoftmax(-1); // reductions with prologues and epilogues
    return z.transpose(0, 1).mul(z.sum(1)).sum(); // a copy of a transposed view
  };
  const t = torch.trace(fn, x, w1, b1, w2, emb, { backward: true });
  const seeds = t.graph.nodes.filter((n) => n.op === 'input' && n.phase === 'backward').map((n) => torch.ones(n.shape));
  const g = optimize(takeChecks(t.graph).graph);
  return { g, bind: interpreterBinding(t.program, seeds) };
}

describe('the cpu target renders the kernel IR', () => {
  it('the cpu plan runs the same kernel IR the WebGPU plan renders to WGSL', () => {
    const { g } = traced();
    const cpu = new CpuPlan(g);
    const gpu = gpuPlanWithoutDevice(g);
    const kinds = new Set(cpu.kernelIR.map((k) => k.body.kind));
    for (const kind of ['elementwise', 'reduce', 'matmul', 'index']) expect(kinds, [...kinds].join(', ')).toContain(kind);
    const mm = cpu.kernelIR.filter((k) => k.body.kind === 'matmul').map((k) => k.body as Extract<typeof k.body, { kind: 'matmul' }>);
    expect(mm.some((b) => b.epilogue.length > 0)).toBe(true);
    expect(mm.some((b) => b.reductions.length > 0)).toBe(true);
    const print = (ks: typeof cpu.kernelIR) => ks.map((k) => printKernel(k, (id) => g.node(id).op));
    expect(print(cpu.kernelIR)).toEqual(print(gpu.fused.map((k) => k.kernel)));
    // every cpu kernel names the Kernel it renders, and its steps touch only that kernel's bindings
    cpu.kernels.forEach((k, i) => {
      expect(k.kernel).toBe(cpu.kernelIR[i]);
      expect(k.name).toBe(k.kernel.name);
      // a matmul's Wasm epilogue (its JavaScript loop's slots) is a step of its own here
      const steps = k.steps.flatMap((s) => (s.kind === 'matmul' && s.epilogue ? [s, s.epilogue.js] : [s]));
      const slots = steps.flatMap((s) => (s.kind === 'js' ? [...s.ins.filter((x) => x !== null), ...s.outs] : s.kind === 'matmul' ? [s.a, s.b, s.out] : [...s.ins.map((x) => x.slot), s.out.slot]));
      for (const s of slots) {
        if ('binding' in s) expect(s.binding).toBeLessThan(k.kernel.bindings.length);
        else expect(s.scratch).toBeLessThan(k.scratch.length);
      }
      // every write binding is written by some step
      const written = new Set(steps.flatMap((s) => (s.kind === 'js' ? s.outs : s.kind === 'matmul' ? [s.out] : [s.out.slot])).flatMap((s) => ('binding' in s ? [s.binding] : [])));
      k.kernel.bindings.forEach((b, j) => {
        if (b.access === 'write') expect(written.has(j), `${k.name} binding ${j} (%${b.value})`).toBe(true);
      });
    });
  });

  it('its rendered kernels compute what the reference interpreter computes', async () => {
    const { g, bind } = traced();
    const want = await interpretOutputs(g, bind);
    const plan = new CpuPlan(g);
    const out = plan.run(
      (id) => bind(g.node(id)) as Storage,
      (id) => bind(g.node(id)) as number,
    );
    expect(g.outputs.length).toBeGreaterThan(3);
    for (const [i, o] of g.outputs.entries()) {
      const n = g.node(o.id);
      const s = out.get(o.id);
      const got = s ? Float32Array.from((await new Tensor(s, [...n.shape], n.dtype).toArray()) as ArrayLike<number>) : Float32Array.of(bind(n) as number);
      const d = relDiff(got, want[i]!);
      expect(d.rel, `output ${i} (${o.role}): ${d.detail}`).toBeLessThanOrEqual(1e-5);
    }
  });
});
