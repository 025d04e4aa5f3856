/** The 'cpu' backend: TypedArray storage and synchronous kernels. */
import type { DType, HostArray } from '../../ir/dtype.ts';
import { hostArray } from '../../ir/dtype.ts';
import { WgtorchError } from '../../ir/errors.ts';
import { getOp, type Attrs, type OpDef } from '../../ir/registry.ts';
import { numel, stridesOf } from '../../ir/shape.ts';
import { findBadIndex, indexCheckAttrs } from '../../ir/value-checks.ts';
import type { Backend, KernelArg, Storage, TensorArg } from '../backend.ts';
import { broadcastStrides, runElementwise, type EwArg } from './elementwise.ts';
import { batchLayout, batchOffset, operandBatchStrides } from '../../ir/matmul-batch.ts';
import { matmulF32 } from './matmul.ts';
import { runIndex } from './indexing.ts';
import { runReduce } from './reduce.ts';
import { asReduceOp } from '../../ir/reductions.ts';
import { swapsLastTwo, transposeLastTwo } from './transpose.ts';

export class CpuStorage implements Storage {
  version = 0;
  /** Set while the values are still on their way back from another device. */
  pending: Promise<void> | null = null;
  constructor(
    readonly backend: Backend,
    readonly dtype: DType,
    public data: HostArray,
  ) {}
  get size(): number {
    return this.data.length;
  }
}

function arr(a: TensorArg): HostArray {
  const s = a.storage as CpuStorage;
  if (s.pending) {
    throw new WgtorchError(
      'this cpu tensor is still being copied from the GPU. Fix: await t.toArray() (or await t.cpuAsync()) before using it in a cpu op.',
    );
  }
  return s.data;
}

/** What the cpu backend allocated since the last reset (torch.cpu.counters()). */
export const cpuAllocations = { largestBuffer: 0 };

export class CpuBackend implements Backend {
  readonly device = 'cpu' as const;

  alloc(dtype: DType, size: number): Storage {
    const data = hostArray(dtype, size);
    cpuAllocations.largestBuffer = Math.max(cpuAllocations.largestBuffer, data.byteLength);
    return new CpuStorage(this, dtype, data);
  }

  fromHost(data: HostArray, dtype: DType): Storage {
    return new CpuStorage(this, dtype, data);
  }

  check(_op: OpDef, a: TensorArg, attrs: Attrs): void {
    const err = findBadIndex(indexCheckAttrs(attrs), arr(a), numel(a.shape), a.shape);
    if (err) throw err;
  }

  async read(storage: Storage): Promise<HostArray> {
    const s = storage as CpuStorage;
    if (s.pending) await s.pending;
    return s.data;
  }

  readSync(storage: Storage): HostArray {
    return arr({ storage, shape: [], dtype: storage.dtype });
  }

  exec(op: OpDef, args: KernelArg[], attrs: Attrs, out: TensorArg): void {
    const o = arr(out);
    switch (op.kind) {
      case 'elementwise': {
        const ew: EwArg[] = args.map((a) =>
          typeof a === 'number' ? a : { arr: arr(a), strides: broadcastStrides(a.shape, out.shape) },
        );
        runElementwise(op, attrs, o, out.shape, ew);
        return;
      }
      case 'reduce': {
        const a = args[0] as TensorArg;
        runReduce(asReduceOp(op.name), arr(a), a.shape, attrs.dims as number[], o);
        return;
      }
      case 'matmul': {
        const [a, b] = args as TensorArg[];
        const r = a.shape.length;
        const [M, K] = a.shape.slice(r - 2);
        const N = b.shape[r - 1];
        const batch = out.shape.slice(0, -2);
        // one product per matrix of the batch, each at its element offsets (stride 0 where broadcast)
        const layout = batchLayout(batch, [operandBatchStrides(a.shape, batch), operandBatchStrides(b.shape, batch), operandBatchStrides(out.shape, batch)]);
        for (let z = 0; z < layout.count; z++) {
          const [oa, ob, oc] = [0, 1, 2].map((w) => batchOffset(layout, w, z));
          matmulF32(arr(a) as Float32Array, oa, false, arr(b) as Float32Array, ob, false, o as Float32Array, oc, M, K, N);
        }
        return;
      }
      case 'movement': {
        const a = args[0] as TensorArg;
        if (op.name === 'reshape') {
          if (o !== arr(a)) o.set(arr(a)); // same row-major order
          return;
        }
        if (op.name === 'permute' && swapsLastTwo(attrs.dims as number[])) {
          transposeLastTwo(arr(a), a.shape, o);
          return;
        }
        const s = stridesOf(a.shape);
        const strides = op.name === 'permute' ? (attrs.dims as number[]).map((d) => s[d]) : broadcastStrides(a.shape, out.shape);
        runElementwise(getOp('copy'), {}, o, out.shape, [{ arr: arr(a), strides }]);
        return;
      }
      case 'index': {
        runIndex(op.name, (args as TensorArg[]).map((a) => ({ arr: arr(a), shape: a.shape })), attrs, o, out.shape);
        return;
      }
      case 'source': {
        if (op.name === 'full') o.fill(attrs.value as number);
        else {
          const start = attrs.start as number;
          const step = attrs.step as number;
          for (let i = 0; i < o.length; i++) o[i] = start + i * step;
        }
        return;
      }
    }
  }
}
