/**
 * A compiled graph on WebGPU: the optimised graph, its fusion schedule, one generated
 * kernel per group, and the executor that binds buffers and records the dispatches
 * into the context's open batch (no submit, no readback). Intermediates go back to the
 * pool right after their last reader, so later kernels of the same call reuse them.
 */
import { foldGrid, gridFits } from '../codegen-wgsl/fold.ts';
import { packKernels } from '../codegen-wgsl/pack.ts';
import { renderKernel, type MatmulProblem, type WgslKernel } from '../codegen-wgsl/render.ts';
import type { Graph } from '../ir/graph.ts';
import { fmtShape, numel, sameShape } from '../ir/shape.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fuse, kernelNodes, ownedNodes, type Kernel as Group, type Schedule } from '../passes/fusion.ts';
import { buildKernels } from '../passes/kernel-build.ts';
import { withLanes } from '../passes/row-lanes.ts';
import { withVectorLoads } from '../passes/vector-loads.ts';
import { nonIntegerScalar } from '../passes/int-kernels.ts';
import { partsOf, writes, type Kernel } from '../passes/kernel-ir.ts';
import { arenaEligible, minStorage, withArena } from '../passes/binding-arena.ts';
import type { Storage } from '../runtime/backend.ts';
import { GpuStorage, type WebGPUBackend } from '../runtime/webgpu/backend.ts';
import { newDispatchSite, workgroupGrid, type DispatchSite } from '../runtime/webgpu/context.ts';
import { packFits, planPacks } from './pack-schedule.ts';
import { envVar } from '../platform/env.ts';
import type { MatmulChoice, MatmulTuner } from '../runtime/webgpu/matmul-tuner.ts';
import { assignSlots, PlanBuffers, PlanLru, buffersOfDroppedPlans, memplanCapBytes } from './gpu-memory.ts';

/** A scalar's value: folded constants carry theirs, traced scalars are bound per call. */
export function constantOr(g: Graph, id: number, bound: (id: number) => number): number {
  const n = g.node(id);
  return n.attrs.constant ? (n.attrs.value as number) : bound(id);
}

export interface PlanStats {
  /** generated kernels (WGSL shaders) per call */
  kernels: number;
  /** fusion groups: more than kernels where independent ones are packed into one dispatch */
  fusedKernels: number;
  dispatches: number;
  bytesMoved: number;
  flops: number;
  /** the matmul variant of every matmul kernel: problem, shape class, variant, and whether tuned, from disk, or the default */
  matmuls: MatmulPick[];
}

export interface GpuPlanOptions {
  /** pack independent kernels into shared dispatches (default true; env WGTORCH_PACK=0 turns it off) */
  pack?: boolean;
  /** picks matmul variants by timing them on the device (see autotune()); without it, the default variant */
  tuner?: MatmulTuner | null;
  /**
   * serve small buffers of a kernel over the device's binding limit through one arena buffer
   * (passes/binding-arena.ts) instead of splitting it (default true; env WGTORCH_ARENA=0 turns it off).
   * 'force': every kernel with two or more candidates gets an arena, needed or not (tests of the renderers; env WGTORCH_ARENA=force)
   */
  arena?: boolean | 'force';
  /**
   * give the intermediates that never leave a call buffers of the plan's own, assigned once by
   * liveness and kept between calls (gpu-memory.ts), instead of taking them from the pool every
   * call (default true; env WGTORCH_MEMPLAN=0 turns it off)
   */
  memplan?: boolean;
}

/** The variant a matmul kernel was generated with, and why (stats and the perf log show it). */
export interface MatmulPick {
  kernel: string;
  /** e.g. 'TN 100x1000x64' (layout, M x N x K) */
  problem: string;
  shapeClass: string;
  variant: string;
  source: MatmulChoice['source'];
}

export class GpuPlan {
  readonly schedule: Schedule;
  /** what runs: one entry per dispatch (a fused kernel, or a pack of independent ones), rendered */
  kernels: WgslKernel[] = [];
  /** the fused kernels, one per schedule group, before packing */
  fused: WgslKernel[] = [];
  /** the kernel IR of what runs (packs included) */
  get kernelIR(): Kernel[] {
    return this.kernels.map((k) => k.kernel);
  }
  /** in-place updates computed into a fresh buffer instead, which the updated tensor adopts */
  readonly renamed = new Set<number>();
  /** the matmul variant of every matmul kernel */
  matmuls: MatmulPick[] = [];
  private pipelinesCache: GPUComputePipeline[] | null = null;
  private stepsCache: DispatchStep[] | null = null;
  private inputIdsCache: number[] | null = null;
  private preparing: Promise<void> | null = null;
  private lastUse = new Map<number, number>();
  private readonly outputIds: Set<number>;
  private readonly pack: boolean;
  private readonly tuner: MatmulTuner | null;
  private tuning: Promise<void> | null = null;
  private readonly arena: boolean;
  private readonly forceArena: boolean;
  /** the arena buffer of each part of each dispatch that has one ('dispatch:part'), kept between calls */
  private arenaBuffers = new Map<string, GpuStorage>();
  private readonly memplan: boolean;
  /** the static memory plan: a storage of the plan's own for every planned intermediate, made at the first run after a build */
  private memory: { storages: Map<number, GpuStorage>; buffers: PlanBuffers } | null = null;

  /** values written straight into the storage they update (graph input id, or null: a tensor the graph never read) */
  readonly inPlace = new Map<number, number | null>();

  constructor(
    readonly graph: Graph,
    private readonly backend: WebGPUBackend,
    /** mutation outputs: new value -> the graph input holding the tensor's old value (null if never read) */
    private readonly mutations: Map<number, number | null> = new Map(),
    opts: GpuPlanOptions = {},
  ) {
    const ctx = backend.ctx;
    const maxBindings = ctx.limits.maxStorageBuffersPerShaderStage;
    const arenaEnv = envVar('WGTORCH_ARENA');
    this.arena = opts.arena !== undefined ? opts.arena !== false : arenaEnv !== '0';
    this.forceArena = opts.arena === 'force' || (opts.arena === undefined && arenaEnv === 'force');
    const rowKernels = envVar('WGTORCH_ROW_KERNELS') !== '0';
    const plan = (arena: boolean) => {
      const arenaOpt = arena ? { eligible: arenaEligible } : undefined;
      // Fusion counts an in-place update's read of the old value as free (it is read in the
      // output's buffer); where the plan then cannot write in place, fuse again without it.
      let hints = new Map([...mutations].filter((e): e is [number, number] => e[1] !== null));
      let schedule = fuse(graph, { maxBindings, inPlace: hints, arena: arenaOpt, rowKernels });
      for (let round = 0; round < 3; round++) {
        const granted = new Map([...hints].filter(([v, c]) => canWriteInPlace(schedule, v, c)));
        if (granted.size === hints.size) break;
        hints = granted;
        schedule = fuse(graph, { maxBindings, inPlace: hints, arena: arenaOpt, rowKernels });
      }
      return schedule;
    };
    const packEnv = envVar('WGTORCH_PACK');
    this.memplan = opts.memplan ?? envVar('WGTORCH_MEMPLAN') !== '0';
    this.pack = opts.pack ?? packEnv !== '0';
    this.tuner = opts.tuner ?? null;
    this.schedule = plan(this.arena);
    this.outputIds = new Set(graph.outputs.map((o) => this.baseOf(o.id)));
    this.build();
    // fusion's count of what an arena saves is an estimate: where a kernel still binds too many, fuse without arenas
    if (this.arena && this.fused.some((k) => k.layout.storage.length > maxBindings)) {
      this.schedule.log.push(`[arena] a kernel still binds more than the device's ${maxBindings} storage buffers with an arena: fused again without arenas`);
      const log = this.schedule.log;
      this.schedule = plan(false);
      this.schedule.log.unshift(...log);
      this.arena = false;
      this.build();
    }
  }

  private readonly sizeOf = (id: number) => numel(this.graph.node(id).shape);

  /** `k` within the device's binding limit through an arena, where one helps (else `k` itself) */
  private fitted(k: Kernel, budget: number, log: Map<string, string>): Kernel {
    if (!this.arena) return k;
    const a = withArena(k, this.forceArena ? Math.min(budget, minStorage(k, this.sizeOf)) : budget, this.sizeOf);
    if (!a || a === k) return k;
    const members = a.arena!.members.map((m) => `%${k.bindings[m]!.value}`);
    log.set(
      k.name,
      `[arena] bound ${members.join(', ')} of ${k.name} through one buffer: it would bind ${k.bindings.length} storage buffers,` +
        (k.bindings.length <= budget
          ? ' within the limit, but WGTORCH_ARENA=force gives every kernel an arena'
          : ` ${budget < this.backend.ctx.limits.maxStorageBuffersPerShaderStage ? `more than the ${budget} left in its pack` : `more than the device's ${budget}`}`),
    );
    return a;
  }

  /** Lowers the schedule (with the tuner's current matmul choices), packs it, and plans buffer lifetimes. */
  private build(): void {
    const { graph } = this;
    const ctx = this.backend.ctx;
    const log = this.schedule.log;
    this.inPlace.clear();
    this.renamed.clear();
    for (const [v, c] of this.mutations) if (canWriteInPlace(this.schedule, v, c)) this.inPlace.set(v, c);
    const tuner = this.tuner;
    const limit = ctx.limits.maxStorageBuffersPerShaderStage;
    const matmulVariant = tuner ? (p: MatmulProblem) => tuner.lookup(p).variant : undefined;
    const render = (k: Kernel) => renderKernel(k, { matmulVariant });
    const fixedLanes = envVar('WGTORCH_ROW_LANES');
    // WGTORCH_VEC4=0: the scalar mapping of every kernel (to measure the vec4 one against it)
    const vectorLoads = envVar('WGTORCH_VEC4') !== '0';
    /** the kernel IR of each fused kernel before any arena */
    let plain: Kernel[] = [];
    /** the arena each kernel ended with, by kernel name (a kernel given another in a pack says so once) */
    const arenaLog = new Map<string, string>();
    const lowerAll = () => {
      const aliasIn = new Map<number, number>();
      for (const [v, c] of this.inPlace) if (c !== null) aliasIn.set(c, v);
      plain = buildKernels(this.schedule, aliasIn);
      if (fixedLanes) plain = withLanes(plain, Number(fixedLanes));
      if (vectorLoads) plain = withVectorLoads(plain);
      arenaLog.clear();
      return plain.map((k) => render(this.fitted(k, limit, arenaLog)));
    };
    let fused = lowerAll();
    let dispatches = fused.map((_, i) => [i]);
    if (this.pack) {
      // a tensor can adopt a fresh buffer only if no other output shares the value
      const renamable = new Set(
        [...this.inPlace].filter(([v, c]) => c !== null && graph.outputs.filter((o) => this.baseOf(o.id) === v).length === 1).map(([v]) => v),
      );
      // packs that fit only with arenas (copies) are worth it where they save a dispatch
      let packing = planPacks(fused, this.inPlace, renamable, ctx.limits);
      if (this.arena) {
        const least = plain.map((k) => minStorage(k, this.sizeOf));
        const withArenas = planPacks(fused, this.inPlace, renamable, ctx.limits, least);
        if (withArenas.dispatches.length < packing.dispatches.length) packing = withArenas;
      }
      if (packing.renamed.size) {
        for (const v of packing.renamed) {
          this.inPlace.delete(v);
          this.renamed.add(v);
        }
        fused = lowerAll();
      }
      dispatches = packing.dispatches;
      for (const line of packing.log) if (!log.includes(line)) log.push(line);
    }
    this.fused = fused;
    for (const s of this.arenaBuffers.values()) this.backend.free(s);
    this.arenaBuffers.clear();
    this.kernels = dispatches
      .flatMap((d) => {
        let parts = d.map((i) => fused[i]!);
        if (parts.length === 1) return parts;
        if (!packFits(parts, ctx.limits) && this.arena) parts = this.shrinkPack(d, parts, plain, render, arenaLog);
        if (packFits(parts, ctx.limits)) return [packKernels(parts)];
        log.push(`[pack] no pack: ${parts.map((k) => k.name).join(' + ')} exceed the binding limits after renaming`);
        return parts;
      })
      .map((k) => (gridFits(k, ctx.limits.maxComputeWorkgroupsPerDimension) ? k : foldGrid(k)));
    for (const line of arenaLog.values()) if (!log.includes(line)) log.push(line);
    this.matmuls = fused
      .filter((k) => k.matmul)
      .map((k) => {
        const p = k.matmul!.problem;
        const choice = tuner?.lookup(p);
        return {
          kernel: k.name,
          problem: `${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'} ${p.M}x${p.N}x${p.K}`,
          shapeClass: choice?.shapeClass ?? '',
          variant: k.matmul!.variant,
          source: choice?.source ?? 'default',
        };
      });
    this.lastUse = new Map();
    this.kernels.forEach((k, i) => {
      for (const b of k.kernel.bindings) this.lastUse.set(b.value, i);
    });
    this.pipelinesCache = null;
    this.stepsCache = null;
    this.preparing = null;
    this.releaseMemory();
  }

  /**
   * The planned intermediates: values a kernel writes that are not outputs (returned, saved for
   * the backward, gradients, mutations) and not written in place, so no one sees them after the call.
   */
  private planMemory(): { storages: Map<number, GpuStorage>; buffers: PlanBuffers } {
    const writesOf = this.kernels.map((k) => writes(k.kernel).filter((w) => !this.inPlace.has(w) && !this.outputIds.has(w)));
    const bytes = (id: number) => 4 * Math.max(1, this.sizeOf(id));
    const { slotOf, slotBytes } = assignSlots(writesOf, this.lastUse, bytes);
    const buffers = new PlanBuffers(this.backend.ctx.pool, slotBytes);
    buffersOfDroppedPlans.register(this, buffers, buffers);
    const storages = new Map<number, GpuStorage>();
    for (const [id, slot] of slotOf) {
      const n = this.graph.node(id);
      storages.set(id, new GpuStorage(this.backend, n.dtype, numel(n.shape), buffers.slots[slot]!));
    }
    return { storages, buffers };
  }

  /** Bytes held between calls by the static memory plan (0 before the first run, or with it off). */
  get plannedBytes(): number {
    return this.memory?.buffers.bytes ?? 0;
  }

  /** Gives the memory plan's buffers back to the pool; the next run plans again. */
  releaseMemory(): void {
    if (!this.memory) return;
    plansHoldingMemory().dropped(this);
    buffersOfDroppedPlans.unregister(this.memory.buffers);
    this.memory.buffers.release();
    this.memory = null;
  }

  /**
   * The tensor `target` updated by renamed value `v` takes over `src`, the storage the call
   * computed `v` into. With the memory plan, its old buffer becomes the spare that the next
   * call computes `v` into (the tensor alternates between two buffers, and every bind group
   * hits); without it, the old buffer goes back to the pool.
   */
  adoptRenamed(v: number, target: GpuStorage, src: GpuStorage): void {
    const buffers = this.memory?.buffers;
    if (buffers && this.renamed.has(v) && (buffers.spares.get(v) ?? src) === src && this.backend.swap(target, src)) {
      buffers.spares.set(v, src);
      return;
    }
    this.backend.adopt(target, src);
  }

  /**
   * The parts of a pack over the binding limit, with arenas in as many of them (those that save
   * the most first, each by no more than needed) as bring the pack within the limit.
   */
  private shrinkPack(indices: number[], parts: WgslKernel[], plain: Kernel[], render: (k: Kernel) => WgslKernel, log: Map<string, string>): WgslKernel[] {
    const limit = this.backend.ctx.limits.maxStorageBuffersPerShaderStage;
    let excess = parts.reduce((s, p) => s + p.layout.storage.length, 0) - limit;
    const saving = indices.map((i, j) => parts[j]!.layout.storage.length - minStorage(plain[i]!, this.sizeOf));
    const order = [...indices.keys()].sort((a, b) => saving[b]! - saving[a]!);
    const out = [...parts];
    for (const j of order) {
      if (excess <= 0 || saving[j]! <= 0) break;
      const cut = Math.min(excess, saving[j]!);
      const k = plain[indices[j]!]!;
      out[j] = render(this.fitted(k, out[j]!.layout.storage.length - cut, log));
      excess -= parts[j]!.layout.storage.length - out[j]!.layout.storage.length;
    }
    return out;
  }

  /** The arena buffer of part `part` of dispatch `dispatch`, made once and kept between calls. */
  private arenaBuffer(dispatch: number, part: number, elements: number): GPUBuffer {
    const key = `${dispatch}:${part}`;
    let s = this.arenaBuffers.get(key);
    if (!s || s.size !== elements) {
      if (s) this.backend.free(s);
      s = this.backend.alloc('float32', elements);
      this.arenaBuffers.set(key, s);
    }
    return s.buffer;
  }

  /** Matmul problems the tuner has not measured yet. */
  get untuned(): MatmulProblem[] {
    const t = this.tuner;
    return t ? this.fused.flatMap((k) => (k.matmul && t.needsTuning(k.matmul.problem) ? [k.matmul.problem] : [])) : [];
  }

  /**
   * Times the candidate variants of every matmul whose shape class the tuner does not know
   * yet (on this device; remembered on disk), then regenerates the kernels that should use
   * another variant. Calls before it settles run the default variant; calls after, the winner.
   */
  autotune(): Promise<void> {
    const problems = this.untuned;
    if (!this.tuner || !problems.length) return this.tuning ?? Promise.resolve();
    this.tuning ??= this.tuner.tune(problems).then(() => {
      const before = this.fused.map((k) => k.code).join('\0');
      const prepared = this.preparing !== null;
      this.build();
      if (this.fused.map((k) => k.code).join('\0') !== before && prepared) void this.prepare().catch(() => {});
      this.tuning = null;
    });
    return this.tuning;
  }

  /**
   * Creates every kernel's pipeline concurrently (createComputePipelineAsync). Where the driver
   * compiles at pipeline creation, this overlaps the compiles with each other and with other
   * work; run() later finds them cached. Without it, run() creates them synchronously.
   */
  prepare(): Promise<void> {
    this.preparing ??= this.backend.ctx.pipelines
      .prepare(this.kernels.map((k) => ({ wgsl: k.code, label: k.name, layout: k.layout })))
      .then((p) => {
        this.pipelinesCache ??= p;
      });
    return this.preparing;
  }

  /**
   * Compiles every kernel on the background device (off this device's queue; see
   * runtime/webgpu/background-compile.ts): once it resolves, the first run creates its
   * pipelines here and finds the driver's shader cache warm. A tuning that changes the
   * kernels later makes them compile again at their first run.
   */
  precompile(): Promise<void> {
    return this.backend.ctx.background.compile(this.kernels.map((k) => ({ wgsl: k.code, label: k.name, layout: k.layout })));
  }

  private get pipelines(): GPUComputePipeline[] {
    this.pipelinesCache ??= this.kernels.map((k) => this.backend.ctx.pipeline(k.code, k.name, k.layout));
    return this.pipelinesCache;
  }

  get stats(): PlanStats {
    return {
      kernels: this.kernels.length,
      fusedKernels: this.fused.length,
      matmuls: this.matmuls,
      dispatches: this.kernels.length,
      bytesMoved: this.kernels.reduce((s, k) => s + k.kernel.bytes, 0),
      flops: this.kernels.reduce((s, k) => s + k.kernel.flops, 0),
    };
  }

  /**
   * Time of each kernel: one call is recorded keeping all its buffers, then every dispatch
   * is replayed `reps` times alone between two waits. (Replays repeat in-place updates:
   * this perturbs the parameters, so profile after measuring, not before.)
   */
  async profile(
    inputs: (id: number) => Storage,
    bound: (id: number) => number,
    targets: Map<number, Storage>,
    reps = 5,
  ): Promise<{ name: string; ms: number; flops: number }[]> {
    const ctx = this.backend.ctx;
    const capture = { dispatches: [] as { kernel: number; buffers: GPUBuffer[]; params: Uint32Array | Uint32Array[]; grid: [number, number, number] }[] };
    this.run(inputs, bound, targets, capture);
    await ctx.sync();
    // time the waits as they are: no sleeping on an estimate in between
    const sleep = ctx.waiter.sleepFraction;
    ctx.waiter.sleepFraction = 0;
    const out: { name: string; ms: number; flops: number }[] = [];
    try {
      for (const d of capture.dispatches) {
        const t0 = performance.now();
        const k = this.kernels[d.kernel]!;
        for (let r = 0; r < reps; r++) ctx.dispatch(this.pipelines[d.kernel], d.buffers, d.params, d.grid, k.kernel.flops);
        await ctx.sync();
        out.push({ name: k.name, ms: (performance.now() - t0) / reps, flops: k.kernel.flops });
      }
    } finally {
      ctx.waiter.sleepFraction = sleep;
    }
    return out;
  }

  private baseOf(id: number): number {
    return this.schedule.views.get(id)?.base ?? id;
  }

  /** What each dispatch binds, writes, copies and frees: fixed until the next build, so run() only looks values up. */
  private get steps(): DispatchStep[] {
    return (this.stepsCache ??= this.kernels.map((k, i) => dispatchStep(k, i, this.inPlace, this.lastUse, this.outputIds, this.backend.ctx.limits.maxComputeWorkgroupsPerDimension)));
  }

  /**
   * Records the kernels. `inputs` gives the storage of every input node and `scalars` the
   * value of every scalar node; returns the storage of every output.
   */
  run(
    inputs: (id: number) => Storage,
    bound: (id: number) => number,
    targets: Map<number, Storage> = new Map(),
    capture?: { dispatches: { kernel: number; buffers: GPUBuffer[]; params: Uint32Array | Uint32Array[]; grid: [number, number, number] }[] },
    /** called after each kernel's dispatch with what is written so far (value checks run there) */
    afterKernel?: (valueOf: (id: number) => Storage | undefined) => void,
  ): Map<number, Storage> {
    const ctx = this.backend.ctx;
    const values = new Map<number, Storage>();
    for (const id of this.inputIds) values.set(id, inputs(id));
    const mine = new Set<GpuStorage>();
    const planned = this.memplan ? (this.memory ??= this.planMemory()).storages : null;
    if (planned) plansHoldingMemory().ran(this);
    const spares = this.memory?.buffers.spares;
    const pipelines = this.pipelines;
    const steps = this.steps;
    for (let i = 0; i < steps.length; i++) {
      const st = steps[i]!;
      const k = this.kernels[i]!;
      for (const w of st.writes) {
        if (w.inPlace !== undefined) {
          values.set(w.id, w.inPlace !== null ? values.get(w.inPlace)! : targets.get(w.id)!);
          continue;
        }
        const p = planned?.get(w.id) ?? spares?.get(w.id);
        if (p) {
          values.set(w.id, p);
          continue;
        }
        const n = this.graph.node(w.id);
        const s = this.backend.alloc(n.dtype, numel(n.shape));
        values.set(w.id, s);
        mine.add(s);
      }
      // an arena's members are copied in before the dispatch (values read, old values updated in place) and out after (values written)
      const buffers: GPUBuffer[] = new Array(st.slots.length);
      for (let j = 0; j < st.slots.length; j++) {
        const slot = st.slots[j]!;
        buffers[j] = typeof slot === 'number' ? storageOf(values, slot, k.name).buffer : this.arenaBuffer(i, slot.part, slot.elements);
      }
      for (const c of st.copyIn) ctx.copy(storageOf(values, c.value, k.name).buffer, 0, buffers[c.slot]!, c.offset, 4 * storageOf(values, c.value, k.name).size);
      const scalarValues = st.scalars.length ? st.scalars.map((id) => constantOr(this.graph, id, bound)) : NO_SCALARS;
      if (st.intScalars) {
        const notInt = nonIntegerScalar(k.kernel, scalarValues);
        if (notInt !== null) {
          throw new WgtorchError(
            `compile: kernel ${k.name} computes on int32 values with numbers that were integers when it was compiled, but this call passes ${notInt}.` +
              " Fix: use the default mode (it compiles again when a number's integrality changes), or keep the number an integer.",
          );
        }
      }
      // the same scalars give the same params: only a kernel whose scalars changed renders them again
      if (!st.params || !sameValues(st.scalarValues, scalarValues)) {
        st.params = k.params(scalarValues);
        st.scalarValues = scalarValues;
      }
      ctx.dispatch(pipelines[i]!, buffers, st.params, st.grid, k.kernel.flops, st.site);
      for (const c of st.copyOut) ctx.copy(buffers[c.slot]!, c.offset, storageOf(values, c.value, k.name).buffer, 0, 4 * storageOf(values, c.value, k.name).size);
      afterKernel?.((id) => values.get(this.baseOf(id)));
      if (capture) {
        capture.dispatches.push({ kernel: i, buffers, params: st.params, grid: st.grid });
        continue; // keep every buffer alive for replays
      }
      // free what no later kernel reads and nobody returns
      for (const id of st.frees) {
        const s = values.get(id);
        if (s instanceof GpuStorage && mine.has(s)) this.backend.free(s);
      }
    }
    const out = new Map<number, Storage>();
    for (const o of this.graph.outputs) out.set(o.id, values.get(this.baseOf(o.id))!);
    return out;
  }

  private get inputIds(): number[] {
    return (this.inputIdsCache ??= this.graph.nodes.filter((n) => n.op === 'input').map((n) => n.id));
  }
}

const NO_SCALARS: readonly number[] = [];

let lru: PlanLru<GpuPlan> | null = null;
/** the plans holding memory-plan buffers, capped by WGTORCH_MEMPLAN_MAX_MB */
function plansHoldingMemory(): PlanLru<GpuPlan> {
  return (lru ??= new PlanLru<GpuPlan>(memplanCapBytes(envVar('WGTORCH_MEMPLAN_MAX_MB'))));
}

function sameValues(a: readonly number[] | null, b: readonly number[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

function storageOf(values: Map<number, Storage>, id: number, kernel: string): GpuStorage {
  const v = values.get(id) as GpuStorage | undefined;
  if (!v) throw new Error(`internal compiler error: kernel ${kernel} reads %${id}, which no earlier kernel wrote`);
  return v;
}

/** One dispatch of a plan, resolved once per build (see GpuPlan.steps). */
interface DispatchStep {
  /** values written, with the graph input whose storage an in-place one writes (null: the target tensor; undefined: not in place) */
  writes: { id: number; inPlace: number | null | undefined }[];
  /** what each binding gets: a value's buffer, or the arena buffer of a part */
  slots: (number | { part: number; elements: number })[];
  /** arena members copied into (before) and out of (after) their arena's binding slot, at byte offsets */
  copyIn: { value: number; slot: number; offset: number }[];
  copyOut: { value: number; slot: number; offset: number }[];
  scalars: number[];
  /** the kernel may refuse non-integer scalars (int kernels) */
  intScalars: boolean;
  grid: [number, number, number];
  /** values whose last reader this is and that no output returns */
  frees: number[];
  /** the context's bind group of this dispatch's last call */
  site: DispatchSite;
  scalarValues: readonly number[] | null;
  params: Uint32Array | Uint32Array[] | null;
}

function dispatchStep(
  k: WgslKernel,
  i: number,
  inPlace: ReadonlyMap<number, number | null>,
  lastUse: ReadonlyMap<number, number>,
  outputs: ReadonlySet<number>,
  maxPerDim: number,
): DispatchStep {
  const slots: DispatchStep['slots'] = [];
  const copyIn: DispatchStep['copyIn'] = [];
  const copyOut: DispatchStep['copyOut'] = [];
  partsOf(k.kernel).forEach((p, pi) => {
    const arena = p.arena;
    const at = new Map(arena?.members.map((m, j) => [m, arena.offsets[j]!]) ?? []);
    let arenaSlot = -1;
    p.bindings.forEach((b, bi) => {
      const off = at.get(bi);
      if (off === undefined) return void slots.push(b.value);
      if (arenaSlot < 0) {
        arenaSlot = slots.length;
        slots.push({ part: pi, elements: arena!.elements });
      }
      if (b.access === 'read' || (inPlace.get(b.value) ?? null) !== null) copyIn.push({ value: b.value, slot: arenaSlot, offset: 4 * off });
      if (b.access === 'write') copyOut.push({ value: b.value, slot: arenaSlot, offset: 4 * off });
    });
  });
  const grid = (Array.isArray(k.workgroups) ? k.workgroups : workgroupGrid(k.workgroups as number, maxPerDim)) as [number, number, number];
  const bound = new Set(k.kernel.bindings.map((b) => b.value));
  return {
    writes: writes(k.kernel).map((id) => ({ id, inPlace: inPlace.has(id) ? inPlace.get(id)! : undefined })),
    slots,
    copyIn,
    copyOut,
    scalars: [...k.kernel.scalars],
    intScalars: nonIntegerScalar(k.kernel, k.kernel.scalars.map(() => 0.5)) !== null,
    grid,
    frees: [...bound].filter((id) => lastUse.get(id) === i && !outputs.has(id)),
    site: newDispatchSite(),
    scalarValues: null,
    params: null,
  };
}

/**
 * Whether value v (which replaces the tensor held by input c) may be computed straight into
 * c's buffer: no later kernel reads c's old value, and the kernel computing v reads c (if at
 * all) only at the element it writes, in its elementwise body or matmul epilogue.
 */
export function canWriteInPlace(s: Schedule, v: number, c: number | null): boolean {
  const g = s.graph;
  if (!s.writes.has(v) || s.views.has(v)) return false;
  const owner = s.kernels.findIndex((k) => ownedNodes(k).includes(v));
  if (owner < 0) return false;
  if (c === null) return true;
  const baseOf = (id: number) => s.views.get(id)?.base ?? id;
  const readers = (k: Group) => kernelNodes(k).filter((id) => g.node(id).inputs.some((i) => baseOf(i) === c));
  for (let i = owner + 1; i < s.kernels.length; i++) if (readers(s.kernels[i]).length) return false;
  const k = s.kernels[owner];
  // where the kernel may read c at the element it writes: its elementwise body, a matmul's
  // epilogue (one element per output) or an operand reduction's epilogue (one element per row or column)
  const regions: { ids: number[]; shape: number[] }[] =
    k.kind === 'elementwise'
      ? [{ ids: k.nodes, shape: k.shape }]
      : k.kind === 'matmul'
        ? [
            { ids: k.epilogue, shape: g.node(k.node).shape },
            ...k.reductions.map((r) => ({ ids: r.epilogue, shape: [g.node(k.node).shape[r.operand === 'A' ? 0 : 1]] })),
          ]
        : [];
  for (const id of readers(k)) {
    const region = regions.find((r) => r.ids.includes(id));
    if (!region) return false;
    for (const i of g.node(id).inputs) {
      if (baseOf(i) !== c) continue;
      if (s.views.has(i) || !sameShape(g.node(i).shape, region.shape)) return false;
    }
    if (!region.ids.includes(v)) return false;
  }
  return sameShape(g.node(v).shape, g.node(c).shape);
}
