/**
 * The kernel IR (src/passes/kernel-ir.ts): fused kernels as values. What graphs() shows,
 * what the plan binds and what the pipeline cache lays out all come from it; its printed
 * form names the computation and the IR nodes; building it needs no device.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { optimize } from '../src/compile/optimize.ts';
import { renderKernel } from '../src/codegen-wgsl/render.ts';
import { fuse } from '../src/passes/fusion.ts';
import { buildKernels } from '../src/passes/kernel-build.ts';
import { printKernel, reads, writes } from '../src/passes/kernel-ir.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { captureLogs, interpreterBinding, runGpuPlan } from './helpers/compile-util.ts';

function linearRelu() {
  torch.manualSeed(1);
  return torch.trace((x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) => x.matmul(w.t()).add(b).relu(), torch.randn(8, 12), torch.randn(16, 12), torch.randn(16));
}

describe('kernel IR (no device)', () => {
  it('a matmul with a bias + relu epilogue: its body, bindings, covers and a printed form that reads like the IR', () => {
    const t = linearRelu();
    const g = optimize(t.graph);
    const s = fuse(g, { maxBindings: 8 });
    const ks = buildKernels(s, new Map());
    const mm = ks.find((k) => k.body.kind === 'matmul')!;
    expect(mm).toBeDefined();
    const b = mm.body as Extract<typeof mm.body, { kind: 'matmul' }>;
    expect([b.M, b.N, b.K, b.transA, b.transB]).toEqual([8, 16, 12, false, true]);
    expect(b.epilogue.map((e) => e.op)).toEqual(['add', 'relu']);
    expect(b.epilogue[0]!.args[0]).toEqual({ kind: 'acc' });
    // the bias is read at (row, col) with a row stride of 0
    expect(b.inputs).toEqual([{ at: 'rowcol', read: 0, strides: [0, 1] }]);
    expect(mm.bindings.map((x) => x.access)).toEqual(['read', 'read', 'write', 'read']);
    const ids = (op: string) => g.nodes.filter((n) => n.op === op).map((n) => n.id);
    expect(mm.covers.nodes).toEqual(expect.arrayContaining([...ids('mm'), ...ids('add'), ...ids('relu')]));
    const text = printKernel(mm, (id) => g.node(id).op);
    expect(text).toMatch(/^kernel k\d+_mmNT_add_relu: matmul \[8, 16\] = %\d+ @ %\d+\^T, K 12/);
    expect(text).toMatch(/e0 = add\(acc, %\d+\[row\*0 \+ col\*1\]\) {2}# %\d+/);
    expect(text).toMatch(/e1 = relu\(e0\)/);
    expect(text).toMatch(/covers %\d+ mm, %\d+ add, %\d+ relu/);
    // every value a kernel reads is an input of the graph or written by an earlier kernel
    const written = new Set<number>(g.nodes.filter((n) => n.op === 'input').map((n) => n.id));
    for (const k of ks) {
      for (const r of reads(k)) expect(written.has(r), `${k.name} reads %${r}`).toBe(true);
      for (const w of writes(k)) written.add(w);
    }
  });

  it('WGSL renders from the kernel IR alone, and its layout is what the IR binds', () => {
    const t = linearRelu();
    const g = optimize(t.graph);
    for (const k of buildKernels(fuse(g, { maxBindings: 8 }), new Map())) {
      const w = renderKernel(k);
      expect(w.layout.storage, k.name).toEqual(k.bindings.map((b) => (b.access === 'read' ? 'read' : 'read_write')));
      expect(w.layout.uniforms).toBe(1);
      // every binding the layout declares appears in the code, numbered as the IR orders them
      w.layout.storage.forEach((a, i) => expect(w.code).toMatch(new RegExp(`@binding\\(${i}\\) var<storage, ${a}>`)));
    }
  });
});

describe.skipIf(!webgpuAvailable)('kernel IR on webgpu', () => {
  it('graphs() lists each kernel with its kernel IR; the plan binds exactly its bindings; pipelines are laid out from it', async () => {
    const t = linearRelu();
    const g = optimize(t.graph);
    const { plan } = await runGpuPlan(g, interpreterBinding(t.program));
    const ctx = torch.webgpu.context();
    for (const k of plan.kernels) {
      const info = ctx.pipelines.info(ctx.pipeline(k.code, k.name, k.layout));
      expect(info.storage).toEqual(k.kernel.bindings.map((b) => (b.access === 'read' ? 'read' : 'read_write')));
    }
    torch.manualSeed(2);
    const model = new torch.nn.Sequential(new torch.nn.Linear(12, 16), new torch.nn.ReLU()).to('webgpu');
    const f = torch.compile((x: torch.Tensor) => model(x).sum(), { autotune: false });
    const { lines } = await captureLogs(['kernels'], () => f(torch.randn(8, 12, { device: 'webgpu' })).item());
    const ks = f.graphs().at(-1)!.kernels;
    expect(ks.length).toBeGreaterThan(0);
    for (const k of ks) {
      expect(k.ir.startsWith(`kernel ${k.name}:`)).toBe(true);
      expect(k.kernel.covers.nodes).toEqual(k.nodes);
    }
    // the kernels log prints each kernel's IR
    expect(lines.map((l) => l.message)).toEqual(ks.map((k) => `${k.part}: ${k.ir}`));
  });
});
