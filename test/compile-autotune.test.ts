/**
 * The autotuner inside torch.compile: matmul kernels use the variant the tuner picked for
 * their (device, shape class), from disk or measured in the background from the first
 * call; warmup() waits for it; the choice shows in graphs() stats and the perf log; the
 * regenerated kernels compute what eager mode computes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { DEFAULT_MATMUL_VARIANT } from '../src/codegen-wgsl/matmul.ts';
import { deviceKey } from '../src/runtime/webgpu/matmul-tuner.ts';
import { getBackend } from '../src/runtime/backend.ts';
import type { WebGPUBackend } from '../src/runtime/webgpu/backend.ts';
import { captureLogs, expectLossesClose, relDiff } from './helpers/compile-util.ts';
import { webgpuAvailable } from './helpers/devices.ts';

const dev: torch.Device = 'webgpu';
// This file's process tunes into its own cache folder, set before the first compile creates the tuner.
const dir = mkdtempSync(join(tmpdir(), 'wgtorch-autotune-'));
process.env.WGTORCH_CACHE_DIR = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function seed(sizes: [number, number, number, number]) {
  const [N, D, H, O] = sizes;
  torch.manualSeed(5);
  const x = torch.randn(N, D, { device: dev });
  const y = torch.randn(N, O, { device: dev });
  const model = new torch.nn.Sequential(new torch.nn.Linear(D, H), new torch.nn.ReLU(), new torch.nn.Linear(H, O)).to(dev);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-3 });
  return () => {
    const loss = lossFn(model(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  };
}

async function losses(step: () => torch.Tensor, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await step().item());
  return out;
}

describe.skipIf(!webgpuAvailable)('autotuned matmuls in torch.compile', () => {
  it('a winner on disk is used from the first call: its WGSL, its stats and the perf log say so, and the step equals eager', async () => {
    await torch.webgpu.init();
    const key = deviceKey(torch.webgpu.context().adapterInfo);
    // the forward matmul x @ W1^T of a 64x1000 -> 100 layer is class 'NT m64 n128 k1024'
    const at = new Date().toISOString();
    const file = {
      version: 1,
      entries: { [key]: { 'NT m64 n128 k1024': { variant: 'r4x4-8x8-vec4', gflops: {}, at }, 'NN m64 n128 k1024': { variant: 'r8x4-8x8-vec4', gflops: {}, at } } },
    };
    writeFileSync(join(dir, 'matmul-tuning.json'), JSON.stringify(file));
    const step = torch.compile(seed([64, 1000, 100, 10]), { autotune: true });
    const { result, lines } = await captureLogs(['perf'], () => losses(step, 1));
    const g = step.graphs()[0]!;
    const fwd = g.stats.matmuls.find((m) => m.problem === 'NT 64x100x1000');
    expect(fwd, JSON.stringify(g.stats.matmuls)).toBeDefined();
    expect(fwd!.variant).toBe('r4x4-8x8-vec4');
    expect(fwd!.source).toBe('disk');
    expect(g.kernels.find((k) => k.name === fwd!.kernel || k.parts?.includes(fwd!.kernel))!.wgsl).toContain('r4x4-8x8-vec4');
    expect(lines.some((l) => l.message.includes(`${fwd!.kernel} (NT 64x100x1000) uses matmul r4x4-8x8-vec4 (disk`))).toBe(true);
    // tiny matmuls are never tuned: dispatch overhead dominates them
    expect(g.stats.matmuls.filter((m) => m.problem === 'NN 64x100x10').map((m) => m.source)).toEqual(['default']);
    const eager = seed([64, 1000, 100, 10]);
    const want = await losses(eager, 6);
    expectLossesClose([...result, ...(await losses(step, 5))], want, 1e-5, 'compiled with a tuned variant');
  });

  it('an unknown class is timed in the background from the first call; warmup() waits for it, and later calls run the winner', async () => {
    const make = () => seed([64, 512, 128, 8]); // NT 64x128x512 and TN 128x512x64: 8 MFLOP each, worth tuning
    const step = torch.compile(make(), { autotune: true });
    await step.warmup();
    const g = step.graphs()[0]!;
    const tuned = g.stats.matmuls.filter((m) => m.source === 'tuned');
    expect(tuned.length, JSON.stringify(g.stats.matmuls)).toBeGreaterThan(0);
    for (const m of tuned) {
      const kernel = g.kernels.find((k) => k.name === m.kernel || k.parts?.includes(m.kernel))!;
      expect(kernel.wgsl).toContain(m.variant);
    }
    const want = await losses(make(), 6);
    const got = await losses(step, 5);
    expectLossesClose(got, want.slice(1), 1e-5, 'compiled after tuning');
  });

  it("eager matmuls use the tuner's known winner (never tuning themselves), and the default without it", async () => {
    const backend = getBackend('webgpu') as WebGPUBackend;
    const ctx = torch.webgpu.context();
    const labels: string[] = [];
    const pipeline = ctx.pipeline.bind(ctx);
    ctx.pipeline = (code, label, layout, entry) => (labels.push(label), pipeline(code, label, layout, entry));
    const was = backend.autotune;
    try {
      torch.manualSeed(6);
      const a = torch.randn(64, 1000, { device: dev });
      const b = torch.randn(1000, 100, { device: dev });
      backend.autotune = true; // the class NN m64 n128 k1024 is on disk (first test): r8x4-8x8-vec4
      const tuned = a.matmul(b);
      backend.autotune = false;
      const plain = a.matmul(b);
      expect(labels).toContain('mm_r8x4-8x8-vec4');
      expect(labels).toContain(`mm_${DEFAULT_MATMUL_VARIANT}`);
      const [t, p] = [await tuned.toArray(), await plain.toArray()] as unknown as number[][];
      expect(relDiff(t!, p!).rel).toBeLessThan(1e-5);
    } finally {
      backend.autotune = was;
      ctx.pipeline = pipeline;
    }
  });

  it('autotune: false keeps the default variant everywhere', async () => {
    const step = torch.compile(seed([64, 1000, 100, 10]), { autotune: false });
    await step.warmup();
    const ms = step.graphs()[0]!.stats.matmuls;
    expect(ms.length).toBeGreaterThan(0);
    for (const m of ms) {
      expect(m.source).toBe('default');
      expect(m.variant.startsWith(DEFAULT_MATMUL_VARIANT.replace(/-vec4$/, ''))).toBe(true);
    }
  });

  it('subgroup winners on disk (the forward NT matmul; the Adam-fused TN weight gradient, packed with a row reduction): the step equals eager, in 4 dispatches', async () => {
    await torch.webgpu.init();
    const ctx = torch.webgpu.context();
    if (!ctx.subgroupsFit) return; // the subgroup variants run only where subgroups are 8 wide (lavapipe here)
    const key = deviceKey(ctx.adapterInfo);
    const at = new Date().toISOString();
    const file = {
      version: 1,
      entries: { [key]: { 'NT m64 n128 k1024': { variant: 'sg-r16x4-32x2', gflops: {}, at }, 'TN m128 n1024 k64': { variant: 'sg-r32x4-16x4', gflops: {}, at } } },
    };
    writeFileSync(join(dir, 'matmul-tuning.json'), JSON.stringify(file));
    // a fresh tuner reads the file (the backend's remembers the earlier tests' winners); last, as it replaces the file
    const be = getBackend('webgpu') as WebGPUBackend;
    (be as unknown as { tuner: null }).tuner = null;
    const step = torch.compile(seed([64, 1000, 100, 10]), { autotune: true });
    const first = await losses(step, 1);
    const g = step.graphs()[0]!;
    const variants = Object.fromEntries(g.stats.matmuls.map((m) => [m.problem, m.variant]));
    expect(variants['NT 64x100x1000'], JSON.stringify(g.stats.matmuls)).toBe('sg-r16x4-32x2');
    expect(variants['TN 100x1000x64'], JSON.stringify(g.stats.matmuls)).toBe('sg-r32x4-16x4');
    expect(g.stats.dispatches).toBe(4);
    const wgsl = g.kernels.map((k) => k.wgsl).join('\n');
    expect(wgsl).toContain('subgroupBroadcast(');
    const eager = seed([64, 1000, 100, 10]);
    const want = await losses(eager, 6);
    expectLossesClose([...first, ...(await losses(step, 5))], want, 1e-5, 'compiled with subgroup variants');
    (be as unknown as { tuner: null }).tuner = null;
  });

  it('two subgroup matmuls packed into one dispatch (the hidden and weight gradients of a second layer): the pack passes each its subgroup builtin, and the step equals eager', async () => {
    await torch.webgpu.init();
    const ctx = torch.webgpu.context();
    if (!ctx.subgroupsFit) return;
    const at = new Date().toISOString();
    const sg = { variant: 'sg-r16x4-32x2', gflops: {}, at };
    // 64x256 -> 256 -> 64: every matmul of the step has 2 MFLOP or more, so each uses its class's winner
    const classes = ['NT m64 n256 k256', 'NT m64 n64 k256', 'NN m64 n256 k64', 'TN m64 n256 k64', 'TN m256 n256 k64'];
    const file = { version: 1, entries: { [deviceKey(ctx.adapterInfo)]: Object.fromEntries(classes.map((c) => [c, sg])) } };
    writeFileSync(join(dir, 'matmul-tuning.json'), JSON.stringify(file));
    const be = getBackend('webgpu') as WebGPUBackend;
    (be as unknown as { tuner: null }).tuner = null;
    const step = torch.compile(seed([64, 256, 256, 64]), { autotune: true });
    const first = await losses(step, 1);
    const g = step.graphs()[0]!;
    expect(g.stats.matmuls.every((m) => m.variant === 'sg-r16x4-32x2'), JSON.stringify(g.stats.matmuls)).toBe(true);
    const packed = g.kernels.filter((k) => (k.parts?.length ?? 0) > 1 && (k.wgsl.match(/subgroupBroadcast\(/g) ?? []).length > 0);
    expect(packed.length, g.kernels.map((k) => k.name).join(', ')).toBeGreaterThan(0);
    // the directive opens the module (after graphs()' comment header), once
    for (const k of packed) {
      expect(k.wgsl.split('\n').find((l) => l.trim() && !l.trim().startsWith('//'))).toBe('enable subgroups;');
      expect(k.wgsl.split('enable subgroups;').length).toBe(2);
    }
    const eager = seed([64, 256, 256, 64]);
    const want = await losses(eager, 6);
    expectLossesClose([...first, ...(await losses(step, 5))], want, 1e-5, 'compiled with packed subgroup variants');
    (be as unknown as { tuner: null }).tuner = null;
  });
});
