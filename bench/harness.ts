// The shared benchmark harness: workloads, one timing loop for every row,
// GPU call counting, and small helpers. Framework modules (wgtorch.ts,
// tfjs.ts) only say how to build a training step; this file times it.

import { globals } from 'webgpu';

/** A two-layer MLP training problem: N x Din -> H -> Dout, MSE (sum), Adam lr 1e-4. */
export interface Workload {
  id: string;
  title: string;
  N: number;
  Din: number;
  H: number;
  Dout: number;
  /** steps run before timing (pipeline compiles, JIT, pool warm-up) */
  warmup: number;
  /** timed steps: at least minSteps, then more until budgetMs is spent or maxSteps reached */
  minSteps: number;
  maxSteps: number;
  budgetMs: number;
}

/**
 * Matmul FLOPs of one training step: forward and weight gradients of both
 * layers, and the input gradient of the second only (x needs no gradient).
 * Elementwise work is ignored. The seed step is ~26 MFLOP.
 */
export function stepFlops(w: Workload): number {
  return 4 * w.N * (w.Din * w.H + w.H * w.Dout) + 2 * w.N * w.H * w.Dout;
}

/** One training step that ends by reading the loss value, as a training loop would. */
export interface Runner {
  step(): Promise<number>;
  /** what the framework itself counts (dispatches/submits), to cross-check the wrapped counts */
  ownCounts?(): { dispatches: number; submits: number } | null;
  /** lines describing what ran (e.g. a compiled graph's kernels), for the report */
  describe?(): string[];
  /** where the time of one step goes, kernel by kernel (run after timing: it may perturb state) */
  profile?(): Promise<string[]>;
  dispose?(): void | Promise<void>;
  /** the first step, where it differs from step() (a compiled step's warmup(), which also waits for the matmul autotuner) */
  firstStep?(): Promise<number>;
}

export type RowStatus = 'ok' | 'failed' | 'skipped';

export interface Row {
  workload: string;
  name: string;
  group: 'wgtorch' | 'tfjs' | 'jaxjs';
  status: RowStatus;
  note?: string;
  /** median ms/step over the timed steps */
  ms?: number;
  /** fastest single step */
  minMs?: number;
  /** the first step, including pipeline compiles / tracing / JIT */
  firstMs?: number;
  steps?: number;
  dispatches?: number;
  submits?: number;
  /** every counted Dawn call per step (see GpuCallCounter) */
  perStep?: Partial<Record<CountName, number>>;
  /** median ms of the synchronous part of a step: JS, autograd, recording and submitting GPU work, before the first await */
  syncMs?: number;
  /** CPU time of this process per timed step (all its threads: helpers, lavapipe's), in ms: what a step costs on a shared machine, where wall time also counts waiting for a core */
  cpuMs?: number;
  lossFirst?: number;
  lossLast?: number;
  /** how many steps the runner had taken at lossLast */
  lossLastStep?: number;
  details?: string[];
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 200);
}

/** Runs a full GC (when node runs with --expose-gc) and lets FinalizationRegistry callbacks run. */
export async function collectGarbage(): Promise<boolean> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return false;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

/** The Dawn calls counted, as (interface, methods): a gated dispatch (after a device-side check) is an indirect one. */
const COUNTED = {
  submits: ['GPUQueue', ['submit']],
  dispatches: ['GPUComputePassEncoder', ['dispatchWorkgroups', 'dispatchWorkgroupsIndirect']],
  writeBuffers: ['GPUQueue', ['writeBuffer']],
  buffersCreated: ['GPUDevice', ['createBuffer']],
  bindGroupsCreated: ['GPUDevice', ['createBindGroup']],
} as const;
export type CountName = keyof typeof COUNTED;

/**
 * Counts Dawn calls (the `webgpu` package), whoever makes them, by wrapping
 * the prototypes: GPUQueue.submit, GPUComputePassEncoder.dispatchWorkgroups(Indirect),
 * and the per-step costs that hide behind them (writeBuffer, createBuffer,
 * createBindGroup). The same instrument for every framework.
 */
export class GpuCallCounter {
  counts = Object.fromEntries(Object.keys(COUNTED).map((k) => [k, 0])) as Record<CountName, number>;
  private restore: (() => void)[] = [];

  install(): this {
    if (this.restore.length) return this;
    const G = globals as unknown as Record<string, { prototype: Record<string, (...a: unknown[]) => unknown> }>;
    for (const [name, [iface, methods]] of Object.entries(COUNTED) as [CountName, readonly [string, readonly string[]]][]) {
      const proto = G[iface]!.prototype;
      for (const method of methods) {
        const orig = proto[method];
        if (!orig) continue;
        const counts = this.counts;
        proto[method] = function (this: unknown, ...a: unknown[]) {
          counts[name]++;
          return orig.apply(this, a);
        };
        this.restore.push(() => (proto[method] = orig));
      }
    }
    return this;
  }

  uninstall(): void {
    for (const r of this.restore) r();
    this.restore = [];
  }

  reset(): void {
    for (const k of Object.keys(this.counts) as CountName[]) this.counts[k] = 0;
  }

  get dispatches(): number {
    return this.counts.dispatches;
  }
  get submits(): number {
    return this.counts.submits;
  }
}

/**
 * Times one row: build the runner, time the first step alone, warm up, then
 * time each step separately and report the median (robust against the bursts
 * of load other processes put on a small machine) and the fastest step.
 */
export async function measure(
  w: Pick<Workload, 'id' | 'warmup' | 'minSteps' | 'maxSteps' | 'budgetMs'>,
  name: string,
  group: Row['group'],
  make: () => Promise<Runner>,
  opts: { counter?: GpuCallCounter; log?: (s: string) => void } = {},
): Promise<Row> {
  const row: Row = { workload: w.id, name, group, status: 'ok' };
  const log = opts.log ?? (() => {});
  let runner: Runner | null = null;
  try {
    await collectGarbage();
    runner = await make();
    let t0 = performance.now();
    row.lossFirst = await (runner.firstStep ?? runner.step)();
    row.firstMs = performance.now() - t0;
    for (let i = 1; i < w.warmup; i++) await runner.step();

    const c = opts.counter;
    c?.reset();
    const own0 = runner.ownCounts?.() ?? null;
    const times: number[] = [];
    const sync: number[] = [];
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    let loss = NaN;
    while (times.length < w.minSteps || (times.length < w.maxSteps && performance.now() - start < w.budgetMs)) {
      t0 = performance.now();
      const p = runner.step(); // runs synchronously up to its first await
      sync.push(performance.now() - t0);
      loss = await p;
      times.push(performance.now() - t0);
    }
    const cpu = process.cpuUsage(cpu0);
    row.steps = times.length;
    row.cpuMs = (cpu.user + cpu.system) / 1000 / times.length;
    row.ms = median(times);
    row.syncMs = median(sync);
    row.minMs = Math.min(...times);
    row.lossLast = loss;
    row.lossLastStep = Math.max(w.warmup, 1) + times.length;
    try {
      row.details = runner.describe?.();
    } catch {
      // inspection is optional
    }
    if (c) {
      row.dispatches = c.dispatches / times.length;
      row.submits = c.submits / times.length;
      row.perStep = Object.fromEntries(Object.entries(c.counts).map(([k, v]) => [k, v / times.length]));
      const own1 = runner.ownCounts?.() ?? null;
      if (own0 && own1) {
        const d = (own1.dispatches - own0.dispatches) / times.length;
        const s = (own1.submits - own0.submits) / times.length;
        if (Math.abs(d - row.dispatches) > 0.01 || Math.abs(s - row.submits) > 0.01)
          row.note = `its own counters say ${fmt(d, 1)} dispatches, ${fmt(s, 1)} submits per step`;
      }
    }
    // after the counts: profiling replays dispatches of its own
    try {
      const prof = await runner.profile?.();
      if (prof?.length) row.details = [...(row.details ?? []), ...prof];
    } catch {
      // profiling is optional
    }
    if (!Number.isFinite(loss)) row.note = `loss is ${loss}`;
    log(`  ${name.padEnd(34)} ${fmt(row.ms, 2).padStart(9)} ms/step (min ${fmt(row.minMs, 2)}, sync part ${fmt(row.syncMs, 2)}, cpu ${fmt(row.cpuMs, 2)}, first ${fmt(row.firstMs, 0)}, ${row.steps} steps)` +
      (c ? `  ${fmt(row.dispatches, 1)} dispatches, ${fmt(row.submits, 1)} submits per step` : ''));
  } catch (e) {
    row.status = 'failed';
    row.note = errorText(e);
    log(`  ${name.padEnd(34)} FAILED: ${row.note}`);
  } finally {
    try {
      await runner?.dispose?.();
    } catch {
      // a failed dispose must not hide the row's own result
    }
  }
  return row;
}

/**
 * Merges the rounds of one row: the round with the lowest median stands for
 * the row (load from other processes only ever slows a round down); the
 * first step is the first round's (the one that compiled), the steps add up.
 */
export function bestRound(rounds: Row[]): Row {
  const ok = rounds.filter((r) => r.status === 'ok');
  if (!ok.length) return rounds[0]!;
  const best = ok.reduce((a, b) => (b.ms! < a.ms! ? b : a));
  const row: Row = { ...best, firstMs: rounds[0]!.firstMs, lossFirst: rounds[0]!.lossFirst, steps: ok.reduce((n, r) => n + r.steps!, 0) };
  if (rounds.length > 1) {
    const all = `medians of ${rounds.length} rounds: ${rounds.map((r) => (r.status === 'ok' ? fmt(r.ms, 2) : r.status)).join(', ')} ms`;
    row.note = row.note ? `${row.note}; ${all}` : all;
  }
  return row;
}

export function skipped(w: Pick<Workload, 'id'>, name: string, group: Row['group'], note: string, log?: (s: string) => void): Row {
  log?.(`  ${name.padEnd(34)} skipped: ${note}`);
  return { workload: w.id, name, group, status: 'skipped', note };
}

export function fmt(x: number | undefined, digits: number): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  return x.toFixed(digits);
}
