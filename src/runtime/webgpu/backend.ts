/**
 * The 'webgpu' backend: every registry op as a generated WGSL kernel (elementwise and
 * reductions from the registry's formulas, matmul from its register-blocked template),
 * recorded into the context's open batch. Buffers return to the pool when their
 * tensors are garbage-collected.
 */
import { asReduceOp } from '../../ir/reductions.ts';
import { batchedMatmulParams, batchVec4Aligned, matmulDispatch, matmulParams, matmulVariantFor, matmulWGSL, scalarTwin, type MatmulBatch } from '../../codegen-wgsl/matmul.ts';
import { batchLayout, operandBatchStrides } from '../../ir/matmul-batch.ts';
import { elementwiseParams, elementwiseWGSL, EW_WORKGROUP } from '../../codegen-wgsl/elementwise.ts';
import type { WgslLayout } from '../../codegen-wgsl/namespace.ts';
import { indexParams, indexWGSL, INDEX_WORKGROUP, type IndexOp, type IndexSpec } from '../../codegen-wgsl/indexing.ts';
import { reduceParams, reduceWGSL } from '../../codegen-wgsl/reduce.ts';
import type { ElementwiseBody, ReduceBody, Ref, TensorInput } from '../../passes/kernel-ir.ts';
import type { DType, HostArray } from '../../ir/dtype.ts';
import { WgtorchError } from '../../ir/errors.ts';
import type { Attrs, OpDef } from '../../ir/registry.ts';
import { fmtShape, numel, sameShape, stridesOf } from '../../ir/shape.ts';
import type { Backend, KernelArg, Storage, TensorArg } from '../backend.ts';
import { broadcastStrides } from '../cpu/elementwise.ts';
import { workgroupGrid, type GPUContext } from './context.ts';
import { foldedEntry } from '../../codegen-wgsl/fold.ts';
import { sweepableRegistry } from '../../platform/gc.ts';
import { CHECK_WORKGROUP, INDEX_CHECK_LAYOUT, INDEX_CHECK_WGSL } from './device-checks.ts';
import { findBadIndex, indexCheckAttrs } from '../../ir/value-checks.ts';
import { MatmulTuner } from './matmul-tuner.ts';
import { envVar } from '../../platform/env.ts';

export class GpuStorage implements Storage {
  version = 0;
  /**
   * The values as uploaded from the host, kept for small int tensors (class targets,
   * indices) while the storage is unwritten: value checks read them instead of the GPU.
   */
  host: { data: HostArray; version: number } | null = null;
  /** freed as a temporary of a library call (see eager/temporaries.ts): any further use is a bug */
  disposed = false;
  constructor(
    readonly backend: WebGPUBackend,
    readonly dtype: DType,
    readonly size: number,
    /** replaced only by WebGPUBackend.adopt */
    public buffer: GPUBuffer,
  ) {}
}

const bytesOf = (size: number) => Math.max(4, size * 4);
/** int tensors up to this many elements keep their host values for value checks */
const HOST_COPY_MAX = 1 << 20;

export class WebGPUBackend implements Backend {
  readonly device = 'webgpu' as const;
  private readonly finalizer: FinalizationRegistry<GPUBuffer>;
  private readonly code = new Map<string, { code: string; label: string; layout: WgslLayout }>();

  constructor(readonly ctx: GPUContext) {
    this.finalizer = ctx.pressure.sweeps(sweepableRegistry<GPUBuffer>((buf) => ctx.pool.release(buf)));
  }

  /** A library call ended: in a loop that never yields, dead tensors' buffers come back here (gc-pressure.ts). */
  safePoint(): void {
    if (this.ctx.pressure.callEnded()) this.ctx.pool.settle();
  }
  private tuner: MatmulTuner | null = null;
  /** matmuls use the autotuner's winners (compiled graphs tune, eager ops only look up) unless WGTORCH_AUTOTUNE=0 */
  autotune = envVar('WGTORCH_AUTOTUNE') !== '0';

  /** The device's matmul autotuner: what was measured on it, in memory and on disk. */
  get matmulTuner(): MatmulTuner {
    return (this.tuner ??= new MatmulTuner(this.ctx));
  }

  alloc(dtype: DType, size: number): GpuStorage {
    const limit = this.ctx.limits.maxStorageBufferBindingSize;
    if (size * 4 > limit) {
      throw new WgtorchError(
        `webgpu: a tensor of ${size} ${dtype} elements (${(size * 4 / 2 ** 20).toFixed(0)} MiB) is larger than this device can bind to a kernel` +
          ` (maxStorageBufferBindingSize: ${(limit / 2 ** 20).toFixed(0)} MiB), so no op could read it.` +
          ' Fix: split it into smaller tensors (e.g. chunks of the batch), or keep it on the cpu.',
      );
    }
    const buf = this.ctx.pool.acquire(bytesOf(size));
    this.ctx.pressure.allocated(buf.size);
    const s = new GpuStorage(this, dtype, size, buf);
    this.finalizer.register(s, buf, s);
    return s;
  }

  flush(): void {
    this.ctx.flush();
  }

  release(s: Storage): void {
    const g = s as GpuStorage;
    if (g.disposed) return;
    this.free(g);
    g.disposed = true;
  }

  /** Returns a storage's buffer to the pool now (compiled plans free their intermediates this way). */
  free(s: GpuStorage): void {
    if (this.finalizer.unregister(s)) this.ctx.pool.release(s.buffer);
  }

  /**
   * `target` takes over `src`'s buffer, and its old buffer returns to the pool: a compiled
   * in-place update that was computed into a fresh buffer (so that the old value's readers
   * could share its dispatch) lands without a copy. `src` must not be used afterwards.
   */
  adopt(target: GpuStorage, src: GpuStorage): void {
    if (target.size !== src.size || target.dtype !== src.dtype) throw new Error('internal error: adopt needs storages of one size and dtype');
    const owned = this.finalizer.unregister(target);
    this.finalizer.unregister(src);
    const old = target.buffer;
    target.buffer = src.buffer;
    this.finalizer.register(target, target.buffer, target);
    if (owned) this.ctx.pool.release(old);
  }

  /**
   * `target` takes over `src`'s buffer and `src` takes `target`'s old one, which the caller then
   * owns (no finalizer returns it to the pool): a compiled plan computes the tensor's next update
   * into it, so the tensor alternates between two buffers and the plan's bind groups hit.
   * False (nothing changed) where `target` does not own its buffer.
   */
  swap(target: GpuStorage, src: GpuStorage): boolean {
    if (target.size !== src.size || target.dtype !== src.dtype) throw new Error('internal error: swap needs storages of one size and dtype');
    if (!this.finalizer.unregister(target)) return false;
    this.finalizer.unregister(src);
    const old = target.buffer;
    target.buffer = src.buffer;
    this.finalizer.register(target, target.buffer, target);
    src.buffer = old;
    return true;
  }

  fromHost(data: HostArray, dtype: DType): Storage {
    const s = this.alloc(dtype, data.length);
    if (data.length) this.ctx.write(s.buffer, data instanceof Uint8Array ? Uint32Array.from(data) : data);
    if (dtype === 'int32' && data.length <= HOST_COPY_MAX) s.host = { data: data.slice(), version: s.version };
    return s;
  }

  check(_op: OpDef, a: TensorArg, attrs: Attrs): void {
    const c = indexCheckAttrs(attrs);
    const n = numel(a.shape);
    if (n === 0) return;
    const s = a.storage as GpuStorage;
    if (s.host && s.host.version === s.version) {
      const err = findBadIndex(c, s.host.data, n, a.shape);
      if (err) throw err;
      return;
    }
    const slot = this.ctx.checks.slot(c, a.shape);
    const pipe = this.ctx.pipeline(INDEX_CHECK_WGSL, 'check_index', INDEX_CHECK_LAYOUT);
    const grid = workgroupGrid(Math.ceil(n / CHECK_WORKGROUP), this.ctx.limits.maxComputeWorkgroupsPerDimension);
    this.ctx.dispatch(pipe, [s.buffer, this.ctx.checks.buffer], this.ctx.checks.params(slot, n, c), grid, n);
    this.ctx.checkRecorded();
  }

  async read(storage: Storage): Promise<HostArray> {
    const s = storage as GpuStorage;
    if (s.disposed) throw disposedError([s.size]);
    if (s.size === 0) return new Float32Array(0);
    const bytes = await this.ctx.read(s.buffer, s.size * 4);
    if (s.dtype === 'float32') return new Float32Array(bytes);
    if (s.dtype === 'int32') return new Int32Array(bytes);
    return Uint8Array.from(new Uint32Array(bytes));
  }

  readSync(): HostArray {
    throw new WgtorchError(
      'this tensor is on webgpu, whose values can only be read asynchronously. Fix: use await t.item(), await t.toArray() or await t.tolist().',
    );
  }

  /**
   * The bmm primitive: the matmul template over the batch in z, each operand's matrices at
   * their batch strides (0 where broadcast), in dispatches of at most the device's z limit;
   * a matrix with more tiles in x or y than the device allows runs with its grid folded.
   */
  private bmm([a, b]: TensorArg[], out: TensorArg): void {
    const r = a.shape.length;
    const [M, K] = a.shape.slice(r - 2);
    const N = b.shape[r - 1];
    const batchShape = out.shape.slice(0, -2);
    const layout = batchLayout(batchShape, [operandBatchStrides(a.shape, batchShape), operandBatchStrides(b.shape, batchShape), operandBatchStrides(out.shape, batchShape)]);
    if (M * N * layout.count === 0) return;
    if (K === 0) return this.runElementwise('copy', {}, [], [0], out);
    const [outer, inner] = layout.levels.length === 2 ? layout.levels : [null, layout.levels[0] ?? { size: 1, strides: [M * K, K * N, M * N] }];
    const batch: MatmulBatch = {
      count: layout.count,
      inner: inner.size,
      stride: { a: inner.strides[0], b: inner.strides[1], c: inner.strides[2] },
      outer: { a: outer?.strides[0] ?? 0, b: outer?.strides[1] ?? 0, c: outer?.strides[2] ?? 0 },
      lda: K,
      ldb: N,
    };
    const tuned = this.autotune ? this.matmulTuner.lookup({ transA: false, transB: false, M, N, K }).variant : undefined;
    let variant = matmulVariantFor(M, N, K, false, tuned);
    // vec4 loads need every matrix and row to start on a multiple of 4 elements: else the scalar twin
    if (variant.vec4 && !batchVec4Aligned(batch)) variant = scalarTwin(variant);
    const max = this.ctx.limits.maxComputeWorkgroupsPerDimension;
    const [gx, gy] = matmulDispatch(M, N, variant);
    const args = [buf(a), buf(b), (out.storage as GpuStorage).buffer];
    const flops = 2 * M * N * K;
    if (gx > max || gy > max) {
      // one matrix needs more tiles in x or y than a dispatch may have: the grid folded into a
      // linear count of workgroups, as compiled kernels do (codegen-wgsl/fold.ts), in one dispatch
      const grid: [number, number, number] = [gx, gy, layout.count];
      const { code, label, layout: wl } = this.cached(`bmm|${variant.name}|fold ${grid.join('x')}`, () => {
        const k = matmulWGSL({ transA: false, transB: false, variant, batched: true, ns: { prefix: 'f_', storage: (i) => i, uniform: (i) => 3 + i, entry: 'function' } });
        const f = foldedEntry(`bmm_${variant.name}`, k.code, k.layout, grid, 'f_');
        return { code: f.code, label: `bmm_${variant.name}_folded`, layout: f.layout };
      });
      const pipe = this.ctx.pipeline(code, label, wl);
      this.ctx.dispatch(pipe, args, batchedMatmulParams(M, N, K, batch), workgroupGrid(gx * gy * layout.count, max), flops * layout.count);
      return;
    }
    const { code, label, layout: wl } = this.cached(`bmm|${variant.name}`, () => {
      const k = matmulWGSL({ transA: false, transB: false, variant, batched: true });
      return { code: k.code, label: `bmm_${variant.name}`, layout: k.layout };
    });
    const pipe = this.ctx.pipeline(code, label, wl);
    // more matrices than one dispatch may have: the next dispatch starts at matrix zBase
    for (let z0 = 0; z0 < layout.count; z0 += max) {
      const nz = Math.min(max, layout.count - z0);
      this.ctx.dispatch(pipe, args, batchedMatmulParams(M, N, K, batch, z0), [gx, gy, nz], flops * nz);
    }
  }

  exec(op: OpDef, args: KernelArg[], attrs: Attrs, out: TensorArg): void {
    const n = numel(out.shape);
    const o = out.storage as GpuStorage;
    switch (op.kind) {
      case 'elementwise':
        return this.elementwise(op.name, args, attrs, out);
      case 'movement': {
        const a = args[0] as TensorArg;
        let strides: number[];
        if (op.name === 'permute') {
          const s = stridesOf(a.shape);
          strides = (attrs.dims as number[]).map((d) => s[d]);
        } else if (op.name === 'expand') strides = broadcastStrides(a.shape, out.shape);
        else strides = stridesOf(out.shape);
        return this.runElementwise(`copy`, {}, [{ tensor: a, access: 'strided', strides }], [], out);
      }
      case 'source': {
        if (n === 0) return;
        if (op.name === 'full') return this.runElementwise('copy', {}, [], [attrs.value as number], out);
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = (attrs.start as number) + i * (attrs.step as number);
        this.ctx.write(o.buffer, out.dtype === 'int32' ? Int32Array.from(data) : data);
        return;
      }
      case 'matmul': {
        if (op.name === 'bmm') return this.bmm(args as TensorArg[], out);
        const [a, b] = args as TensorArg[];
        const [M, K] = a.shape;
        const N = b.shape[1];
        if (M * N === 0) return;
        if (K === 0) return this.runElementwise('copy', {}, [], [0], out);
        // a variant the autotuner already measured for this class (compiled graphs tune; eager only looks up)
        const tuned = this.autotune ? this.matmulTuner.lookup({ transA: false, transB: false, M, N, K }).variant : undefined;
        const variant = matmulVariantFor(M, N, K, false, tuned);
        const { code, label, layout } = this.cached(`mm|${variant.name}`, () => {
          const k = matmulWGSL({ transA: false, transB: false, variant });
          return { code: k.code, label: `mm_${variant.name}`, layout: k.layout };
        });
        const pipe = this.ctx.pipeline(code, label, layout);
        const max = this.ctx.limits.maxComputeWorkgroupsPerDimension;
        const [gx, gy] = matmulDispatch(M, N, variant);
        if (gx > max) {
          throw new WgtorchError(
            `mm: an output of ${M}x${N} needs ${gx} workgroups along its columns, more than this device's ${max}. Fix: split mat2 into column blocks (mat2.t().reshape(...)) or transpose the problem: (B^T A^T)^T.`,
          );
        }
        if (gy <= max) {
          this.ctx.dispatch(pipe, [buf(a), buf(b), o.buffer], matmulParams(M, N, K), [gx, gy, 1], 2 * M * N * K);
          return;
        }
        // more row blocks than one dispatch may have: run it in row bands, bound at byte offsets
        const align = this.ctx.limits.minStorageBufferOffsetAlignment / 4;
        const rowsPerGroup = Math.ceil(M / gy);
        let band = Math.floor((max * rowsPerGroup) / 64) * 64;
        while (band > 64 && ((band * K) % align || (band * N) % align)) band -= 64;
        for (let r0 = 0; r0 < M; r0 += band) {
          const rows = Math.min(band, M - r0);
          const A = { buffer: buf(a), offset: r0 * K * 4, size: buf(a).size - r0 * K * 4 };
          const C = { buffer: o.buffer, offset: r0 * N * 4, size: o.buffer.size - r0 * N * 4 };
          this.ctx.dispatch(pipe, [A, buf(b), C], matmulParams(rows, N, K), matmulDispatch(rows, N, variant), 2 * rows * N * K);
        }
        return;
      }
      case 'index': {
        if (n === 0) return;
        const [x, index] = args as TensorArg[];
        const spec: IndexSpec = { op: op.name as IndexOp, rank: out.shape.length, dtype: out.dtype };
        const { code, label, layout } = this.cached(`index|${spec.op}|${spec.rank}|${spec.dtype}`, () => ({ ...indexWGSL(spec), label: `${spec.op}_r${spec.rank}` }));
        const ins = (args as TensorArg[]).map((a) => ({ shape: a.shape, strides: stridesOf(a.shape) }));
        const params = indexParams(spec, { out: out.shape, attrs, inputs: ins });
        const grid = workgroupGrid(Math.ceil(n / INDEX_WORKGROUP), this.ctx.limits.maxComputeWorkgroupsPerDimension);
        const bufs = index ? [buf(x), buf(index), o.buffer] : [buf(x), o.buffer];
        this.ctx.dispatch(this.ctx.pipeline(code, label, layout), bufs, params, grid, n);
        return;
      }
      case 'reduce': {
        const a = args[0] as TensorArg;
        const dims = attrs.dims as number[];
        if (n === 0) return;
        const kept = a.shape.map((_, i) => i).filter((i) => !dims.includes(i));
        const st = stridesOf(a.shape);
        const body: ReduceBody = {
          kind: 'reduce',
          combine: asReduceOp(op.name),
          kept: kept.map((d) => a.shape[d]),
          reduced: dims.map((d) => a.shape[d]),
          inputs: [{ dtype: a.dtype, access: 'strided', strides: [...kept.map((d) => st[d]), ...dims.map((d) => st[d])] }],
          scalars: 0,
          prologue: [],
          value: { kind: 'input', index: 0 },
          epilogue: [],
          outputs: [{ ref: { kind: 'acc' }, dtype: out.dtype }],
        };
        const key = `reduce|${body.combine}|${kept.length}|${dims.length}|${a.dtype}|${out.dtype}`;
        const { code, label, layout } = this.cached(key, () => ({ ...reduceWGSL(body), label: `${body.combine}_r${kept.length}_${dims.length}` }));
        const grid = workgroupGrid(n, this.ctx.limits.maxComputeWorkgroupsPerDimension);
        this.ctx.dispatch(this.ctx.pipeline(code, label, layout), [buf(a), o.buffer], reduceParams(body, []), grid, numel(a.shape));
        return;
      }
    }
  }

  private elementwise(name: string, args: KernelArg[], attrs: Attrs, out: TensorArg): void {
    const tensors: { tensor: TensorArg; access: TensorInput['access']; strides: number[] | null }[] = [];
    const scalars: number[] = [];
    const refs: Ref[] = args.map((a) => {
      if (typeof a === 'number') {
        scalars.push(a);
        return { kind: 'scalar', index: scalars.length - 1 };
      }
      const access: TensorInput['access'] =
        a.storage === out.storage ? 'alias' : sameShape(a.shape, out.shape) ? 'direct' : 'strided';
      tensors.push({ tensor: a, access, strides: access === 'strided' ? broadcastStrides(a.shape, out.shape) : null });
      return { kind: 'input', index: tensors.length - 1 };
    });
    this.runElementwise(name, attrs, tensors, scalars, out, refs);
  }

  /** One registry op over inputs read as given; refs default to inputs then scalars in order. */
  private runElementwise(
    name: string,
    attrs: Attrs,
    tensors: { tensor: TensorArg; access: TensorInput['access']; strides: number[] | null }[],
    scalars: number[],
    out: TensorArg,
    refs?: Ref[],
  ): void {
    const n = numel(out.shape);
    if (n === 0) return;
    const args: Ref[] = refs ?? [
      ...tensors.map((_, i) => ({ kind: 'input' as const, index: i })),
      ...scalars.map((_, i) => ({ kind: 'scalar' as const, index: i })),
    ];
    const body: ElementwiseBody = {
      kind: 'elementwise',
      shape: [...out.shape],
      inputs: tensors.map((t) => (t.access === 'strided' ? { dtype: t.tensor.dtype, access: t.access, strides: t.strides! } : { dtype: t.tensor.dtype, access: t.access })),
      scalars: scalars.length,
      integerScalars: scalars.every((v) => Number.isInteger(v) && Math.abs(v) < 2 ** 31),
      nodes: [{ op: name, args, attrs, dtype: out.dtype }],
      outputs: [{ ref: { kind: 'node', index: 0 }, dtype: out.dtype }],
    };
    const rank = out.shape.length;
    const key = `ew|${name}|${body.integerScalars ? 'iscal' : ''}|${JSON.stringify(attrs)}|${rank}|${body.inputs.map((i) => i.dtype + i.access).join(',')}|${args.map((r) => r.kind[0] + (r as { index: number }).index).join(',')}|${out.dtype}`;
    const { code, label, layout } = this.cached(key, () => ({ ...elementwiseWGSL(body), label: `${name}_r${rank}` }));
    const buffers = [...tensors.filter((t) => t.access !== 'alias').map((t) => buf(t.tensor)), (out.storage as GpuStorage).buffer];
    const grid = workgroupGrid(Math.ceil(n / EW_WORKGROUP), this.ctx.limits.maxComputeWorkgroupsPerDimension);
    this.ctx.dispatch(this.ctx.pipeline(code, label, layout), buffers, elementwiseParams(body, scalars), grid, n);
  }

  private cached(key: string, make: () => { code: string; label: string; layout: WgslLayout }) {
    let c = this.code.get(key);
    if (!c) this.code.set(key, (c = make()));
    return c;
  }
}

const buf = (a: TensorArg) => {
  const s = a.storage as GpuStorage;
  if (s.disposed) throw disposedError(a.shape);
  return s.buffer;
};
function disposedError(shape: readonly number[]): WgtorchError {
  return new WgtorchError(
    `a webgpu tensor of shape [${shape.join(', ')}] was an intermediate of optimizer.step() or backward() and its memory has been reused.` +
      ' Fix: keep a clone() of values you need after the call (e.g. in a custom optimizer, store state in this.state).',
  );
}
