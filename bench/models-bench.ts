// Issue 12's rows: the character GPT's training step (the example's size and a larger
// one) and the digits CNN's, each eager on webgpu, compiled as a model, compiled as a
// whole step (webgpu and cpu), and jax-js's jitted GPT step on Wasm and WebGPU, in one
// run; dispatches per step counted by the same Dawn wrapper for every framework, and a
// per-kernel profile of the compiled GPT step. `npm run bench -- --models` runs only these.

import * as torch from '../src/index.ts';
import { measure, skipped, type GpuCallCounter, type Row, type Runner } from './harness.ts';
import { compileFn, describeCompiled, profileCompiled, warmupOf } from './wgtorch.ts';
import { cnnBatch, cnnStep, gptBatch, gptStep, makeCnn, makeGpt, GPT_LARGE, GPT_SMALL, type GptConfig } from './models.ts';
import { jaxjsGptRunner } from './jaxjs-gpt.ts';
import type { SharedDevice } from './tfjs.ts';

type Tensor = torch.Tensor;
export type ModelMode = 'eager' | 'compiled model' | 'compiled step';

export interface ModelWorkload {
  id: string;
  title: string;
  kind: 'gpt' | 'cnn';
  gpt?: GptConfig;
  warmup: number;
  minSteps: number;
  maxSteps: number;
  budgetMs: number;
}

export function modelWorkloads(quick: boolean): ModelWorkload[] {
  const t = (budgetMs: number, maxSteps: number) => (quick ? { warmup: 1, minSteps: 2, maxSteps: Math.min(maxSteps, 20), budgetMs: budgetMs / 3 } : { warmup: 3, minSteps: 5, maxSteps, budgetMs });
  const title = (c: GptConfig) => `${c.layers} layers, ${c.heads} heads, width ${c.width}, context ${c.context}, batch ${c.batch}, vocab ${c.vocab}`;
  return [
    { id: 'gpt', title: `GPT step, the example's model (${title(GPT_SMALL)})`, kind: 'gpt', gpt: GPT_SMALL, ...t(4000, 200) },
    { id: 'gpt-large', title: `GPT step, larger (${title(GPT_LARGE)})`, kind: 'gpt', gpt: GPT_LARGE, ...t(6000, 50) },
    { id: 'cnn', title: 'Digits CNN step (conv 1->16 3x3, BatchNorm2d, ReLU, max-pool, conv 16->32, ReLU, max-pool, Linear; batch 64 of 8x8; SGD momentum)', kind: 'cnn', ...t(4000, 200) },
  ];
}

async function wgtorchModelRunner(w: ModelWorkload, device: torch.Device, mode: ModelMode, autotune: boolean): Promise<Runner> {
  if (device === 'webgpu') await torch.webgpu.init();
  let eagerStep: () => Tensor;
  let forward: (x: Tensor) => Tensor;
  let rest: (out: Tensor) => Tensor;
  let input: Tensor;
  if (w.kind === 'gpt') {
    const cfg = w.gpt!;
    const { model, opt } = makeGpt(cfg, device);
    const { idx, targets } = gptBatch(cfg, device);
    input = idx;
    eagerStep = () => gptStep(model, opt, idx, targets);
    forward = (x) => model(x);
    rest = (logits) => {
      const loss = torch.nn.functional.crossEntropy(logits.view(-1, cfg.vocab), targets.view(-1));
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    };
  } else {
    const { model, opt } = makeCnn(device);
    const { x, y } = cnnBatch(device);
    input = x;
    eagerStep = () => cnnStep(model, opt, x, y);
    forward = (t) => model(t);
    rest = (logits) => {
      const loss = torch.nn.functional.crossEntropy(logits, y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    };
  }
  const counts = device === 'webgpu' ? () => torch.webgpu.counters() : undefined;
  if (mode === 'eager') return { step: () => eagerStep().item(), ownCounts: counts };
  const compile = compileFn()!;
  if (mode === 'compiled model') {
    const fast = compile((x: Tensor) => forward(x), { autotune });
    return {
      step: () => rest(fast(input)).item(),
      firstStep: async () => rest(await warmupOf(fast)(input)).item(),
      ownCounts: counts,
      describe: () => describeCompiled(fast),
    };
  }
  const step = compile(() => eagerStep(), { autotune });
  return {
    step: () => step().item(),
    firstStep: async () => (await warmupOf(step)()).item(),
    ownCounts: counts,
    describe: () => describeCompiled(step),
    profile: w.kind === 'gpt' ? () => profileCompiled(step, [], device) : undefined,
  };
}

export interface ModelBenchOptions {
  quick: boolean;
  gpuOk: boolean;
  gpuError: string;
  counter: GpuCallCounter;
  shared: () => Promise<SharedDevice>;
  log: (s: string) => void;
}

export async function runModelBenches(
  o: ModelBenchOptions,
  /** called after every row with what is measured so far (the bench writes its report as it goes) */
  progress?: (m: { workloads: ModelWorkload[]; rows: Row[]; notes: string[] }) => void,
): Promise<{ workloads: ModelWorkload[]; rows: Row[]; notes: string[] }> {
  const workloads = modelWorkloads(o.quick);
  const rows: Row[] = [];
  const notes: string[] = [];
  // on lavapipe the matmul autotuner takes minutes per new shape class: --quick keeps the default kernels
  const autotune = !o.quick;
  if (!autotune) notes.push('--quick compiles with `autotune: false` (the default matmul kernels): the autotuner needs minutes per new shape class on lavapipe.');
  const specs: [string, torch.Device, ModelMode][] = [
    ['wgtorch eager webgpu', 'webgpu', 'eager'],
    ['wgtorch compiled model', 'webgpu', 'compiled model'],
    ['wgtorch compiled step', 'webgpu', 'compiled step'],
    ['wgtorch compiled step cpu', 'cpu', 'compiled step'],
  ];
  const done = (r: Row) => {
    rows.push(r);
    progress?.({ workloads, rows, notes });
  };
  const jax = async (w: ModelWorkload, b: 'wasm' | 'webgpu') => {
    const name = `jax-js ${b}`;
    if (b === 'webgpu' && !o.gpuOk) return done(skipped(w, name, 'jaxjs', `no WebGPU device (${o.gpuError})`, o.log));
    done(await measure(w, name, 'jaxjs', () => jaxjsGptRunner(w.gpt!, b, o.shared), { counter: b === 'webgpu' ? o.counter : undefined, log: o.log }));
  };
  for (const w of workloads) {
    o.log(`\n${w.title}`);
    for (const [name, device, mode] of specs) {
      if (device === 'webgpu' && !o.gpuOk) {
        done(skipped(w, name, 'wgtorch', `no WebGPU device (${o.gpuError})`, o.log));
        continue;
      }
      done(await measure(w, name, 'wgtorch', () => wgtorchModelRunner(w, device, mode, autotune), { counter: device === 'webgpu' ? o.counter : undefined, log: o.log }));
    }
    if (w.kind === 'gpt') await jax(w, 'wasm');
  }
  // last: jax-js compiles a shader per shape, which takes minutes on lavapipe
  for (const w of workloads.filter((x) => x.kind === 'gpt')) {
    o.log(`\n${w.title}: jax-js webgpu`);
    await jax(w, 'webgpu');
  }
  return { workloads, rows, notes };
}

const fmt = (x: number | undefined, d: number) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

/**
 * The issue 12 targets, as ratios of this run's rows. "Faster than jax-js on each backend" is
 * read like for like: the compiled webgpu step against jax-js webgpu, the compiled cpu step
 * (the target for machines without a GPU) against jax-js wasm. The cross-backend ratio (the
 * compiled webgpu step against jax-js wasm) is printed too, for information: on lavapipe
 * both "GPU" rows run on the same CPU cores.
 */
export function modelTargets(rows: Row[]): string[] {
  const get = (wl: string, name: string) => rows.find((r) => r.workload === wl && r.name === name && r.status === 'ok');
  const out: string[] = [];
  for (const wl of ['gpt', 'gpt-large']) {
    const check = (mine: string, other: string, want: number, what: string, info = false) => {
      const m = get(wl, mine);
      const r = get(wl, other);
      if (!m || !r) return out.push(`- ${wl}: ${what}: ${m ? other : mine} did not run.`);
      const ratio = r.ms! / m.ms!;
      const verdict = info ? 'for information' : ratio >= want ? 'met' : 'MISSED';
      out.push(`- ${wl}: ${what}: ${fmt(ratio, 2)}x (${fmt(r.ms, 2)} / ${fmt(m.ms, 2)} ms) — ${verdict}`);
    };
    check('wgtorch compiled step', 'wgtorch eager webgpu', 3, 'compiled whole step (webgpu) vs eager webgpu, target >= 3x');
    check('wgtorch compiled step', 'jax-js webgpu', 1, 'compiled whole step (webgpu) vs jax-js webgpu, target > 1x');
    check('wgtorch compiled step cpu', 'jax-js wasm', 1, 'compiled whole step (cpu) vs jax-js wasm, target > 1x');
    check('wgtorch compiled step', 'jax-js wasm', 1, 'compiled whole step (webgpu) vs jax-js wasm, across backends', true);
  }
  return out;
}

export function modelMarkdown(res: { workloads: ModelWorkload[]; rows: Row[]; notes: string[]; command: string; date: string; partial?: boolean }): string {
  const L: string[] = ['<!-- models:start -->', '## Issue 12: GPT and CNN training steps', ''];
  if (res.partial) L.push('**This run is still going (or was stopped): the rows below are those measured so far.**', '');
  L.push(`\`${res.command}\`, ${res.date}. Each step reads its loss. Dispatches: Dawn's dispatchWorkgroups and dispatchWorkgroupsIndirect calls per step, counted the same way for every framework.`, '');
  for (const n of res.notes) L.push(`- ${n}`);
  if (res.notes.length) L.push('');
  for (const w of res.workloads) {
    L.push(`### ${w.title}`, '', '| row | ms/step (median) | min | first step ms | steps | dispatches/step | submits/step | loss first -> last | note |', '|---|---:|---:|---:|---:|---:|---:|---|---|');
    for (const r of res.rows.filter((x) => x.workload === w.id)) {
      if (r.status !== 'ok') {
        L.push(`| ${r.name} | ${r.status} | | | | | | | ${r.note ?? ''} |`);
        continue;
      }
      L.push(`| ${r.name} | ${fmt(r.ms, 2)} | ${fmt(r.minMs, 2)} | ${fmt(r.firstMs, 0)} | ${r.steps} | ${fmt(r.dispatches, 1)} | ${fmt(r.submits, 1)} | ${fmt(r.lossFirst, 4)} -> ${fmt(r.lossLast, 4)} | ${r.note ?? ''} |`);
    }
    L.push('');
    for (const r of res.rows.filter((x) => x.workload === w.id && x.details?.length)) for (const d of r.details!) L.push(`- ${r.name}: ${d}`);
    L.push('');
  }
  L.push('### Targets (issue 12)', '', ...modelTargets(res.rows), '', 'jax-js rows start from other (LCG) weights, so their losses differ; the work per step is the same model.', '<!-- models:end -->', '');
  return L.join('\n');
}
