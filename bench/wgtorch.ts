// wgtorch's rows: the workload as a PyTorch user writes it (Sequential of
// Linear, ReLU, Linear; MSELoss sum; Adam lr 1e-4), eager on 'cpu' and
// 'webgpu', and compiled (the model, or the whole step) once torch.compile
// exists.

import * as torch from '../src/index.ts';
import { collectGarbage, type Runner, type Workload } from './harness.ts';

type Tensor = torch.Tensor;
type Compile = <F extends (...args: never[]) => unknown>(fn: F, opts?: Record<string, unknown>) => F;

/** torch.compile once the lead lands it; null until then. */
export function compileFn(): Compile | null {
  const c = (torch as unknown as { compile?: unknown }).compile;
  return typeof c === 'function' ? (c as Compile) : null;
}

export type Mode = 'eager' | 'compiled model' | 'compiled step';

export async function wgtorchRunner(w: Workload, device: torch.Device, mode: Mode = 'eager'): Promise<Runner> {
  if (device === 'webgpu' && !(await torch.webgpu.isAvailable())) {
    await torch.webgpu.init(); // throws with what is missing
  }
  torch.manualSeed(0);
  const x = torch.randn(w.N, w.Din, { device });
  const y = torch.randn(w.N, w.Dout, { device });
  const model = new torch.nn.Sequential(
    new torch.nn.Linear(w.Din, w.H),
    new torch.nn.ReLU(),
    new torch.nn.Linear(w.H, w.Dout),
  ).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });

  let step: () => Tensor;
  let compiled: unknown = null;
  let first: (() => Promise<number>) | undefined;
  if (mode === 'eager') {
    step = () => {
      const loss = lossFn(model(x), y);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      return loss;
    };
  } else {
    const compile = compileFn();
    if (!compile) throw new Error('torch.compile is not available yet');
    if (mode === 'compiled model') {
      const fast = compile((input: Tensor) => model(input));
      compiled = fast;
      const rest = (out: Tensor) => {
        const loss = lossFn(out, y);
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
        return loss;
      };
      step = () => rest(fast(x));
      first = async () => rest(await warmupOf(fast)(x)).item();
    } else {
      step = compile(() => {
        const loss = lossFn(model(x), y);
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
        return loss;
      });
      compiled = step;
      const fastStep = step;
      first = async () => (await warmupOf(fastStep)()).item();
    }
  }

  const counts = device === 'webgpu' ? () => torch.webgpu.counters() : null;
  return {
    step: () => step().item(),
    firstStep: first,
    ownCounts: counts ? () => counts() : undefined,
    describe: compiled ? () => describeCompiled(compiled) : undefined,
    profile: compiled ? () => profileCompiled(compiled, mode === 'compiled model' ? [x] : [], device) : undefined,
  };
}

/** A compiled function's warmup(): trace, compile, wait for the autotuner, create pipelines concurrently, run. */
export function warmupOf<A extends unknown[]>(fn: (...a: A) => Tensor): (...a: A) => Promise<Tensor> {
  const w = (fn as unknown as { warmup?: (...a: A) => Promise<Tensor> }).warmup;
  return w ? (...a: A) => w(...a) : async (...a: A) => fn(...a);
}

/** Per-kernel time of one call of a compiled function (its profile() replays each dispatch alone). */
export async function profileCompiled(fn: unknown, args: Tensor[], device: torch.Device): Promise<string[]> {
  const profile = (fn as { profile?: (...a: Tensor[]) => Promise<{ name: string; ms: number; flops: number; matmulMs?: number }[]> }).profile;
  if (!profile) return [];
  // cpu: the median of several profiled calls (each one real call, kernel by kernel)
  const runs = device === 'cpu' ? await Promise.all(Array.from({ length: 7 }, () => profile(...args))) : [await profile(...args)];
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const ks = runs[0]!.map((k, i) => ({ ...k, ms: med(runs.map((r) => r[i]!.ms)), matmulMs: k.matmulMs === undefined ? undefined : med(runs.map((r) => r[i]!.matmulMs!)) }));
  const total = ks.reduce((s, k) => s + k.ms, 0);
  const how = device === 'cpu' ? 'median of 7 profiled calls; the Wasm matmul apart from the JavaScript loops' : 'each dispatch replayed alone between waits';
  return [
    `per kernel (${how}; ${total.toFixed(2)} ms in all): ` +
      ks
        .map((k) => `\`${k.name}\` ${k.ms.toFixed(2)} ms${k.matmulMs !== undefined && k.matmulMs > 0 ? ` (matmul ${k.matmulMs.toFixed(2)} ms)` : ''}${k.flops > 1e6 ? ` (${(k.flops / k.ms / 1e6).toFixed(1)} GFLOP/s)` : ''}`)
        .join(', '),
  ];
}

interface GraphView {
  kernels: { name: string; parts?: string[] }[];
  stats: {
    kernels: number;
    fusedKernels: number;
    dispatches: number;
    bytesMoved: number;
    flops: number;
    compileMs: number;
    matmuls: { kernel: string; problem: string; variant: string; source: string }[];
  };
}

/** The cached graphs of a compiled function, from its graphs() inspection API. */
export function describeCompiled(fn: unknown): string[] {
  const graphs = (fn as { graphs?: () => GraphView[] }).graphs?.() ?? [];
  return graphs.map((g, i) => {
    const s = g.stats;
    const kernels = g.kernels.map((k) => (k.parts ? `one dispatch of [${k.parts.map((p) => `\`${p}\``).join(' + ')}]` : `\`${k.name}\``));
    const mm = s.matmuls.map((m) => `${m.problem} ${m.variant} (${m.source})`).join(', ');
    return (
      `graph ${i}: ${s.fusedKernels} fused kernels in ${s.dispatches} dispatches, ${(s.flops / 1e6).toFixed(1)} MFLOP, ${(s.bytesMoved / 2 ** 20).toFixed(1)} MiB moved per call, compiled in ${s.compileMs.toFixed(0)} ms; ` +
      `kernels ${kernels.join(', ')}; matmul variants: ${mm || 'none'}`
    );
  });
}

export interface MemoryStats {
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
  created: number;
}

export interface MemoryResult {
  steps: number;
  gcExposed: boolean;
  afterWarmup: MemoryStats;
  afterSteps: MemoryStats;
  /** the most live buffers seen at a sample point (every 100 steps), without a forced GC */
  peakLiveBuffers: number;
  peakLiveBytes: number;
  msPerStep: number;
}

/**
 * Steady-state device memory of eager WebGPU training: live and pooled
 * buffers after warm-up and after `steps` more steps (each measured after a
 * full GC, since tensors free their buffers through a FinalizationRegistry),
 * and the createBuffer calls in between (zero in a steady state).
 */
const keepAlive = new Set<Runner>();

export async function steadyStateMemory(w: Workload, steps: number, log: (s: string) => void): Promise<MemoryResult> {
  const runner = await wgtorchRunner(w, 'webgpu');
  keepAlive.add(runner); // the model and optimizer must outlive the final GC, or their buffers count as freed
  for (let i = 0; i < Math.max(w.warmup, 20); i++) await runner.step();
  const gcExposed = await collectGarbage();
  const afterWarmup = torch.webgpu.memoryStats();
  let peakLiveBuffers = afterWarmup.liveBuffers;
  let peakLiveBytes = afterWarmup.liveBytes;
  const t0 = performance.now();
  for (let i = 1; i <= steps; i++) {
    await runner.step();
    if (i % 100 === 0) {
      const s = torch.webgpu.memoryStats();
      peakLiveBuffers = Math.max(peakLiveBuffers, s.liveBuffers);
      peakLiveBytes = Math.max(peakLiveBytes, s.liveBytes);
    }
    if (i % 1000 === 0) log(`  memory: ${i}/${steps} steps`);
  }
  const msPerStep = (performance.now() - t0) / steps;
  await collectGarbage();
  const afterSteps = torch.webgpu.memoryStats();
  keepAlive.delete(runner);
  return { steps, gcExposed, afterWarmup, afterSteps, peakLiveBuffers, peakLiveBytes, msPerStep };
}
