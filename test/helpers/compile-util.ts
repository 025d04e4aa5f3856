/**
 * Shared by the torch.compile tests: the seed models, a seeded RNG, float32 comparisons
 * that report the worst element, log capture, and running a graph through GpuPlan or
 * the reference interpreter with the bindings of its trace.
 */
import { expect } from 'vitest';
import * as torch from '../../src/index.ts';
import { GpuPlan } from '../../src/compile/gpu-plan.ts';
import { Tensor } from '../../src/eager/tensor.ts';
import type { Graph, IRNode } from '../../src/ir/graph.ts';
import { getBackend, type Storage } from '../../src/runtime/backend.ts';
import { interpret } from '../../src/runtime/interpreter.ts';
import type { WebGPUBackend } from '../../src/runtime/webgpu/backend.ts';
import { programInputs, type TracedProgram } from '../../src/trace/program.ts';

/** The seed's sizes: N, D_in, H, D_out. */
export const SEED = { N: 64, D_in: 1000, H: 100, D_out: 10 } as const;

export { rng } from './gradcheck.ts';

// ------------------------------------------------------------------ seed models
export class TwoLayerNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  linear1: torch.nn.Linear;
  linear2: torch.nn.Linear;
  constructor(dIn: number, h: number, dOut: number) {
    super();
    this.linear1 = new torch.nn.Linear(dIn, h);
    this.linear2 = new torch.nn.Linear(h, dOut);
  }
  override forward(x: torch.Tensor): torch.Tensor {
    return this.linear2(this.linear1(x).clamp({ min: 0 }));
  }
}

export class MyReLU extends torch.autograd.Function {
  static forward(ctx: torch.autograd.Context, input: torch.Tensor) {
    ctx.saveForBackward(input);
    return input.clamp({ min: 0 });
  }
  static backward(ctx: torch.autograd.Context, gradOutput: torch.Tensor) {
    const [input] = ctx.savedTensors;
    return gradOutput.clone().maskedFill_(input.lt(0), 0);
  }
}

/** The seed's custom-Function model as a module: relu(x.mm(w1)).mm(w2) with MyReLU. */
export class MyReLUNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  w1: torch.nn.Parameter;
  w2: torch.nn.Parameter;
  constructor(dIn: number, h: number, dOut: number) {
    super();
    this.w1 = new torch.nn.Parameter(torch.randn(dIn, h).mul(0.03));
    this.w2 = new torch.nn.Parameter(torch.randn(h, dOut).mul(0.1));
  }
  override forward(x: torch.Tensor): torch.Tensor {
    return MyReLU.apply(x.mm(this.w1)).mm(this.w2);
  }
}

export class DynamicNet extends torch.nn.Module<[torch.Tensor, number], torch.Tensor> {
  inputLinear: torch.nn.Linear;
  middleLinear: torch.nn.Linear;
  outputLinear: torch.nn.Linear;
  constructor(dIn: number, h: number, dOut: number) {
    super();
    this.inputLinear = new torch.nn.Linear(dIn, h);
    this.middleLinear = new torch.nn.Linear(h, h);
    this.outputLinear = new torch.nn.Linear(h, dOut);
  }
  override forward(x: torch.Tensor, depth: number): torch.Tensor {
    let h = this.inputLinear(x).clamp({ min: 0 });
    for (let i = 0; i < depth; i++) h = this.middleLinear(h).clamp({ min: 0 });
    return this.outputLinear(h);
  }
}

export function makeSeedSequential(dIn: number, h: number, dOut: number) {
  return new torch.nn.Sequential(new torch.nn.Linear(dIn, h), new torch.nn.ReLU(), new torch.nn.Linear(h, dOut));
}

/** Two identical copies of a model on `device` (same seed, same construction). */
export function twins<M extends torch.nn.Module>(make: () => M, device: torch.Device, seed = 1): [M, M] {
  torch.manualSeed(seed);
  const a = make().to(device);
  torch.manualSeed(seed);
  const b = make().to(device);
  return [a, b];
}

// ------------------------------------------------------------------ comparisons
export interface Diff {
  /** max |got - want| / max(max |want|, tiny) */
  rel: number;
  detail: string;
}

export function relDiff(got: ArrayLike<number>, want: ArrayLike<number>): Diff {
  if (got.length !== want.length) return { rel: Infinity, detail: `length ${got.length} vs ${want.length}` };
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  scale = Math.max(scale, 1e-30);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    const r = Number.isNaN(d) ? (Number.isNaN(got[i]) && Number.isNaN(want[i]) ? 0 : Infinity) : d / scale;
    if (r > worst) {
      worst = r;
      at = i;
    }
  }
  return { rel: worst, detail: at < 0 ? 'equal' : `worst at ${at}: got ${got[at]}, expected ${want[at]} (max |expected| ${scale})` };
}

/** Element-wise closeness relative to the largest |expected| element. */
export async function expectTensorClose(got: torch.Tensor | null, want: torch.Tensor | null, tol: number, what: string): Promise<void> {
  expect(got, `${what}: missing`).not.toBeNull();
  expect(want, `${what}: missing reference`).not.toBeNull();
  expect(got!.shape, `${what}: shape`).toEqual(want!.shape);
  const d = relDiff(await got!.toArray(), await want!.toArray());
  expect(d.rel, `${what}: ${d.detail}`).toBeLessThanOrEqual(tol);
}

/** Each loss within `rtol` relative of its reference. */
export function expectLossesClose(got: number[], want: number[], rtol: number, what = 'loss'): void {
  expect(got.length, `${what}: count`).toBe(want.length);
  got.forEach((v, i) => {
    expect(Math.abs(v - want[i]), `${what} ${i}: ${v} vs ${want[i]}`).toBeLessThanOrEqual(rtol * Math.abs(want[i]) + 1e-30);
  });
}

// ------------------------------------------------------------------ logs
export type LogLine = { channel: string; message: string };

/** Runs fn with the given log channels on, capturing their lines; turns them off afterwards. */
export async function captureLogs<R>(channels: string[], fn: () => R | Promise<R>): Promise<{ result: R; lines: LogLine[] }> {
  const lines: LogLine[] = [];
  const on = Object.fromEntries(channels.map((c) => [c, true]));
  torch.setLogs(on, { sink: (channel, message) => lines.push({ channel, message }) });
  try {
    const result = await fn();
    return { result, lines };
  } finally {
    torch.setLogs(Object.fromEntries(channels.map((c) => [c, false])), {
      sink: (c, m) => console.error(`[wgtorch:${c}] ${m}`),
    });
  }
}

// ------------------------------------------------------------------ running graphs
/** A binding for the reference interpreter: trace-time values, and folded constants by value. */
export function interpreterBinding(p: TracedProgram, seeds: torch.Tensor[] = []): (n: IRNode) => Storage | number {
  const values = programInputs(p, seeds);
  return (n) => {
    if (n.op === 'scalar' && n.attrs.constant) return n.attrs.value as number;
    const v = values.get(n.id);
    if (v === undefined) throw new Error(`no binding for %${n.id} ${n.op}`);
    return v;
  };
}

/** Runs a graph with the reference interpreter on the CPU; returns each output as a flat array, by output index. */
export async function interpretOutputs(g: Graph, bind: (n: IRNode) => Storage | number): Promise<Float32Array[]> {
  const values = interpret(g, (n) => cpuValue(bind(n)), getBackend('cpu'));
  return Promise.all(g.outputs.map((o) => readStorage(values.get(o.id)!, g.node(o.id))));
}

function cpuValue(v: Storage | number): Storage | number {
  if (typeof v === 'number' || v.backend.device === 'cpu') return v;
  throw new Error('interpretOutputs: bindings must be cpu storages');
}

async function readStorage(v: Storage | number, n: IRNode): Promise<Float32Array> {
  if (typeof v === 'number') return Float32Array.of(v);
  const a = await new Tensor(v, [...n.shape], n.dtype).toArray();
  return Float32Array.from(a as ArrayLike<number>);
}

/** A backend view whose device reports lower limits (`maxStorageBuffersPerShaderStage`, `maxComputeWorkgroupsPerDimension`, ...). */
function limitedBackend(backend: WebGPUBackend, over: Partial<Record<keyof GPUSupportedLimits, number>>): WebGPUBackend {
  const ctx = backend.ctx;
  const limits = new Proxy(ctx.limits, {
    get: (t, p) => (p in over ? over[p as keyof GPUSupportedLimits] : (Reflect.get(t, p, t) as unknown)),
  });
  const bindTo = <T extends object>(target: T, over: Record<string | symbol, unknown>) =>
    new Proxy(target, {
      get: (t, p) => {
        if (p in over) return over[p as string];
        const v = Reflect.get(t, p, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  const fakeCtx = bindTo(ctx, { limits });
  return bindTo(backend, { ctx: fakeCtx }) as WebGPUBackend;
}

export interface PlanRun {
  plan: GpuPlan;
  outputs: Float32Array[];
}

/**
 * Builds a GpuPlan for `g` (optionally with a smaller binding or grid limit) and runs it with the
 * trace's bindings (cpu storages are uploaded); returns each output by output index.
 */
export async function runGpuPlan(
  g: Graph,
  bind: (n: IRNode) => Storage | number,
  opts: { maxBindings?: number; pack?: boolean; maxWorkgroupsPerDimension?: number; arena?: boolean | 'force' } = {},
): Promise<PlanRun> {
  const webgpu = getBackend('webgpu') as WebGPUBackend;
  const over: Partial<Record<keyof GPUSupportedLimits, number>> = {};
  if (opts.maxBindings) over.maxStorageBuffersPerShaderStage = opts.maxBindings;
  if (opts.maxWorkgroupsPerDimension) over.maxComputeWorkgroupsPerDimension = opts.maxWorkgroupsPerDimension;
  const backend = Object.keys(over).length ? limitedBackend(webgpu, over) : webgpu;
  const plan = new GpuPlan(g, backend, new Map(), { pack: opts.pack, arena: opts.arena });
  const uploaded = new Map<number, Storage>();
  for (const n of g.nodes) {
    if (n.op !== 'input') continue;
    const v = bind(n) as Storage;
    uploaded.set(n.id, v.backend.device === 'webgpu' ? v : new Tensor(v, [...n.shape], n.dtype).to('webgpu')._storage);
  }
  const out = plan.run(
    (id) => uploaded.get(id)!,
    (id) => bind(g.node(id)) as number,
  );
  const outputs = await Promise.all(g.outputs.map((o) => readStorage(out.get(o.id)!, g.node(o.id))));
  return { plan, outputs };
}

/**
 * Storage buffers a lowered kernel binds on the device: its pipeline layout's, so values that
 * share one binding arena (several logical bindings of the kernel IR) count once.
 */
export function bindingsOf(k: { kernel: { bindings: unknown[] }; layout?: { storage: unknown[] } }): number {
  return k.layout ? k.layout.storage.length : k.kernel.bindings.length;
}

/** Flushes the device and returns its pending error (an invalid pipeline, say) instead of leaving it for the next test. */
export async function deviceError(): Promise<Error | null> {
  try {
    await torch.webgpu.synchronize();
    return null;
  } catch (e) {
    return e as Error;
  }
}

/**
 * BUG 7 workaround: the WebGPU wait estimator (src/runtime/webgpu/context.ts) can learn a
 * huge ns-per-cost rate from a small batch whose wait also covered host time (tracing,
 * compiling), after which every readback of a large batch sleeps for seconds. Tests start
 * from the initial rate so one test's history cannot time out the next.
 */
export function resetWaitEstimator(): void {
  (torch.webgpu.context().waiter as { nsPerCost: number }).nsPerCost = 0.1;
}
