/**
 * A compiled graph on the CPU: the optimised graph, its fusion schedule (the same rules as on
 * WebGPU, without a binding limit), the kernel IR built from it by the builder the WebGPU plan
 * uses (passes/kernel-build.ts), each kernel rendered for the CPU (generated JavaScript loops
 * and Wasm SIMD matmuls, codegen-cpu/render.ts) and the executor. Updated parameters and optimizer
 * state are written straight into their tensors' arrays where no later kernel reads the old
 * value (the rule the GPU plan follows); scratch and intermediates that nobody returns keep
 * their arrays from call to call.
 */
import { renderCpuKernel, type CpuKernel, type JsStep, type Slot } from '../codegen-cpu/render.ts';
import type { DType, HostArray } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Graph } from '../ir/graph.ts';
import { getOp } from '../ir/registry.ts';
import { numel } from '../ir/shape.ts';
import { fuse, type Schedule } from '../passes/fusion.ts';
import { envVar } from '../platform/env.ts';
import { buildKernels } from '../passes/kernel-build.ts';
import { writes as writesOf, type Kernel } from '../passes/kernel-ir.ts';
import { getBackend, type Storage } from '../runtime/backend.ts';
import type { CpuStorage } from '../runtime/cpu/backend.ts';
import { matmulF32Batched } from '../runtime/cpu/matmul.ts';
import { runMatmulSimdEpilogue, runSimdKernel } from '../runtime/cpu/wasm-simd-kernels.ts';
import { makeResident, residentAddress } from '../runtime/cpu/wasm-resident.ts';
import { StagedInputs } from '../runtime/cpu/wasm-staging.ts';
import { canWriteInPlace, constantOr, type MatmulPick, type PlanStats } from './gpu-plan.ts';

export class CpuPlan {
  readonly schedule: Schedule;
  readonly kernels: CpuKernel[];
  /** values written straight into the storage they update (graph input id, or null: a tensor the graph never read) */
  readonly inPlace = new Map<number, number | null>();
  private readonly outputIds: Set<number>;
  /** arrays of values no caller sees, reused by every call */
  private readonly arena = new Map<number, Storage>();
  /** each kernel's own scratch arrays, reused by every call */
  private readonly scratchOf: Storage[][];
  /** whether tensors the Wasm kernels update in place move into the Wasm memory (WGTORCH_WASM_RESIDENT=0: never) */
  private readonly resident = envVar('WGTORCH_WASM_RESIDENT') !== '0';
  /** float32 graph inputs that two or more Wasm matmuls read and no kernel writes: copied into the Wasm memory once per call */
  private readonly staged: StagedInputs;

  constructor(
    readonly graph: Graph,
    /** mutation outputs: new value -> the graph input holding the tensor's old value (null if never read) */
    mutations: Map<number, number | null> = new Map(),
  ) {
    this.schedule = fuse(graph, { maxBindings: Number.MAX_SAFE_INTEGER, rowKernels: envVar('WGTORCH_ROW_KERNELS') !== '0' });
    for (const [v, c] of mutations) if (canWriteInPlace(this.schedule, v, c)) this.inPlace.set(v, c);
    const aliasIn = new Map<number, number>();
    for (const [v, c] of this.inPlace) if (c !== null) aliasIn.set(c, v);
    this.kernels = buildKernels(this.schedule, aliasIn).map(renderCpuKernel);
    const cpu = getBackend('cpu');
    this.scratchOf = this.kernels.map((k) => k.scratch.map((s) => cpu.alloc(s.dtype, s.size)));
    this.outputIds = new Set(graph.outputs.map((o) => this.baseOf(o.id)));
    this.staged = new StagedInputs(this.sharedMatmulInputs());
  }

  /** the graph inputs copied into the Wasm memory once per call for the matmuls that share them */
  get stagedInputs(): ReadonlySet<number> {
    return this.staged.ids;
  }

  /** graph inputs read as an operand by the products of two or more matmul kernels (with a Wasm epilogue), never written in place */
  private sharedMatmulInputs(): Set<number> {
    const written = new Set([...this.inPlace.values()].filter((c): c is number => c !== null));
    const readers = new Map<number, number>();
    for (const k of this.kernels) {
      const ids = new Set<number>();
      for (const st of k.steps) {
        if (st.kind !== 'matmul' || !st.epilogue) continue;
        for (const s of [st.a, st.b]) if ('binding' in s) ids.add(k.kernel.bindings[s.binding]!.value);
      }
      for (const id of ids) readers.set(id, (readers.get(id) ?? 0) + 1);
    }
    const shared = new Set<number>();
    for (const [id, n] of readers) {
      const node = this.graph.node(id);
      if (n >= 2 && node.op === 'input' && node.dtype === 'float32' && !written.has(id)) shared.add(id);
    }
    return shared;
  }

  /** the kernel IR of what runs (the values the WebGPU plan renders to WGSL) */
  get kernelIR(): Kernel[] {
    return this.kernels.map((k) => k.kernel);
  }

  get matmuls(): MatmulPick[] {
    return this.kernels.flatMap((k) =>
      k.steps.flatMap((s) =>
        s.kind === 'matmul' ? [{ kernel: k.name, problem: `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'} ${s.M}x${s.N}x${s.K}`, shapeClass: '', variant: 'wasm-simd', source: 'default' as const }] : [],
      ),
    );
  }

  get stats(): PlanStats {
    return {
      kernels: this.kernels.length,
      fusedKernels: this.kernels.length,
      matmuls: this.matmuls,
      dispatches: 0,
      bytesMoved: this.kernels.reduce((s, k) => s + k.kernel.bytes, 0),
      flops: this.kernels.reduce((s, k) => s + k.kernel.flops, 0),
    };
  }

  private baseOf(id: number): number {
    return this.schedule.views.get(id)?.base ?? id;
  }

  private scratch(id: number): Storage {
    let s = this.arena.get(id);
    if (!s) {
      const n = this.graph.node(id);
      this.arena.set(id, (s = getBackend('cpu').alloc(n.dtype, numel(n.shape))));
    }
    return s;
  }

  /**
   * Runs one call timing every kernel (and, inside a matmul kernel, the Wasm product apart
   * from the JavaScript loops): where the time of a compiled cpu call goes. It is a real
   * call: in-place updates happen, so profile after measuring.
   */
  profile(inputs: (id: number) => Storage, bound: (id: number) => number, targets: Map<number, Storage> = new Map()): { name: string; ms: number; flops: number; matmulMs: number }[] {
    const times = this.kernels.map(() => ({ ms: 0, matmulMs: 0 }));
    this.run(inputs, bound, targets, (k, matmul, ms) => {
      times[k].ms += ms;
      if (matmul) times[k].matmulMs += ms;
    });
    return this.kernels.map((k, i) => ({ name: k.name, ms: times[i].ms, flops: k.kernel.flops, matmulMs: times[i].matmulMs }));
  }

  run(
    inputs: (id: number) => Storage,
    bound: (id: number) => number,
    targets: Map<number, Storage> = new Map(),
    timed?: (kernel: number, matmul: boolean, ms: number) => void,
    /** called after each kernel with what is written so far (value checks run there, before later kernels write) */
    afterKernel?: (valueOf: (id: number) => Storage | undefined) => void,
  ): Map<number, Storage> {
    const g = this.graph;
    const cpu = getBackend('cpu');
    const values = new Map<number, Storage>();
    for (const n of g.nodes) if (n.op === 'input') values.set(n.id, inputs(n.id));
    this.staged.begin();
    const data = (id: number): HostArray => {
      const s = values.get(id) as CpuStorage | undefined;
      if (!s) throw new Error(`internal compiler error: a cpu kernel reads %${id}, which no earlier kernel wrote`);
      if (s.pending) throw new WgtorchError('this cpu tensor is still being copied from the GPU. Fix: await t.toArray() (or await t.cpuAsync()) before passing it to a compiled function.');
      return s.data;
    };
    this.kernels.forEach((k, ki) => {
      for (const w of writesOf(k.kernel)) {
        if (values.has(w)) continue; // a value two bindings write (never today) keeps one array
        if (this.inPlace.has(w)) {
          const c = this.inPlace.get(w)!;
          values.set(w, c !== null ? values.get(c)! : targets.get(w)!);
        } else if (this.outputIds.has(w)) {
          const n = g.node(w);
          values.set(w, cpu.alloc(n.dtype, numel(n.shape)));
        } else values.set(w, this.scratch(w));
      }
      const { bindings } = k.kernel;
      const scratch = this.scratchOf[ki]!;
      const storage = (s: Slot): Storage => {
        if ('scratch' in s) return scratch[s.scratch]!;
        const id = bindings[s.binding]!.value;
        data(id);
        return values.get(id)!;
      };
      const array = (s: Slot): HostArray => ('scratch' in s ? (scratch[s.scratch] as CpuStorage).data : data(bindings[s.binding]!.value));
      const sc = k.kernel.scalars.map((id) => constantOr(g, id, bound));
      // parameters and optimizer state a Wasm kernel updates in place move into the Wasm memory
      // (once: then it reads and writes them there, with no copy in or out)
      const keepResident = (outs: Slot[]) => {
        if (!this.resident) return;
        for (const s of outs) if ('binding' in s && this.inPlace.has(bindings[s.binding]!.value)) makeResident(storage(s) as CpuStorage);
      };
      const runJs = (st: JsStep) => {
        if (st.simd) keepResident(st.outs);
        const ins = st.ins.map((s) => (s === null ? (null as unknown as HostArray) : array(s)));
        const outs = st.outs.map(array);
        if (!st.simd || !runSimdKernel(st.simd, ins, outs, sc)) st.fn(ins, outs, sc);
      };
      for (const st of k.steps) {
        const t0 = timed ? performance.now() : 0;
        if (st.kind === 'matmul' && st.epilogue) {
          // the product stays in the Wasm memory for the epilogue, which runs there too
          const ep = st.epilogue;
          keepResident(ep.js.outs);
          let t1 = t0;
          const stagedAt = (s: Slot) => {
            if (!('binding' in s)) return -1;
            const d = array(s) as Float32Array;
            return residentAddress(d) >= 0 ? -1 : this.staged.address(bindings[s.binding]!.value, d);
          };
          const ran = runMatmulSimdEpilogue(
            array(st.a) as Float32Array, st.transA, array(st.b) as Float32Array, st.transB, st.M, st.K, st.N,
            ep.js.simd, ep.acc, ep.js.ins.map((s, i) => (s === null || i === ep.acc ? null : array(s))), ep.js.outs.map(array), sc,
            ep.storeC ? (array(st.out) as Float32Array) : null,
            timed ? () => (t1 = performance.now()) : undefined,
            { a: stagedAt(st.a), b: stagedAt(st.b) },
          );
          if (!ran) {
            matmulF32Batched(array(st.a) as Float32Array, 0, 0, st.transA, array(st.b) as Float32Array, 0, 0, st.transB, array(st.out) as Float32Array, 0, 0, st.M, st.K, st.N, 1);
            if (timed) t1 = performance.now();
            ep.js.fn(ep.js.ins.map((s) => (s === null ? (null as unknown as HostArray) : array(s))), ep.js.outs.map(array), sc);
          }
          if (timed) {
            timed(ki, true, t1 - t0);
            timed(ki, false, performance.now() - t1);
          }
          continue;
        }
        if (st.kind === 'op') {
          const arg = (x: { slot: Slot; shape: number[]; dtype: DType }) => ({ storage: storage(x.slot), shape: x.shape, dtype: x.dtype });
          cpu.exec(getOp(st.op), st.ins.map(arg), st.attrs, arg(st.out));
        } else if (st.kind === 'matmul') {
          const a = array(st.a) as Float32Array;
          const b = array(st.b) as Float32Array;
          const c = array(st.out) as Float32Array;
          const { count, strideA, strideB, strideC } = st.batch;
          if (!st.outer) matmulF32Batched(a, 0, strideA, st.transA, b, 0, strideB, st.transB, c, 0, strideC, st.M, st.K, st.N, count);
          else {
            // a batched product's second level: `inner` matrices at the strides above, per outer step
            const o = st.outer;
            const inner = count / o.count;
            for (let z = 0; z < o.count; z++) matmulF32Batched(a, z * o.strideA, strideA, st.transA, b, z * o.strideB, strideB, st.transB, c, z * o.strideC, strideC, st.M, st.K, st.N, inner);
          }
        } else runJs(st);
        timed?.(ki, st.kind === 'matmul', performance.now() - t0);
      }
      afterKernel?.((id) => values.get(this.baseOf(id)));
    });
    const out = new Map<number, Storage>();
    for (const o of g.outputs) out.set(o.id, values.get(this.baseOf(o.id))!);
    return out;
  }
}
