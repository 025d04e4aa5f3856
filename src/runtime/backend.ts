/**
 * A backend owns storage on one device and runs registry ops on it. The eager
 * dispatcher, the tracer and the compiled-plan executor all talk to this interface.
 */
import type { DType, HostArray } from '../ir/dtype.ts';
import type { Attrs, OpDef } from '../ir/registry.ts';

export type Device = 'cpu' | 'webgpu';

export interface Storage {
  readonly backend: Backend;
  readonly dtype: DType;
  /** Elements it holds. */
  readonly size: number;
  /** Bumped by every in-place write; autograd compares it to detect modified saved tensors. */
  version: number;
}

export interface TensorArg {
  storage: Storage;
  shape: readonly number[];
  dtype: DType;
}
/** A tensor, or a plain number used as a scalar operand. */
export type KernelArg = TensorArg | number;

export interface Backend {
  readonly device: Device;
  alloc(dtype: DType, size: number): Storage;
  fromHost(data: HostArray, dtype: DType): Storage;
  /** Computes op(args) into out. out.storage may alias a tensor arg of the same shape (in-place ops). */
  exec(op: OpDef, args: KernelArg[], attrs: Attrs, out: TensorArg): void;
  /**
   * A value check (op kind 'check', e.g. check_index): throws where the values fail it, or,
   * where they are only on the device, arranges for the next readback to throw.
   */
  check(op: OpDef, arg: TensorArg, attrs: Attrs): void;
  /** Gives the memory of a storage no tensor will use again back now (optional: the cpu leaves it to the GC). */
  release?(storage: Storage): void;
  /**
   * A library call (backward, optimizer.step) ended; the eager layer holds only tensors here,
   * no raw device memory. The backend may reclaim dead tensors' memory now, inside the running
   * task (optional: a loop that never awaits otherwise gets none of it back).
   */
  safePoint?(): void;
  /** Submits recorded work (optional): called where a library call ends (optimizer.step, backward). */
  flush?(): void;
  read(storage: Storage): Promise<HostArray>;
  /** Synchronous read where the device allows it; throws a helpful error where it does not. */
  readSync(storage: Storage): HostArray;
}

const backends = new Map<Device, Backend>();
const loaders = new Map<Device, () => Backend>();

export function registerBackend(device: Device, loader: () => Backend): void {
  loaders.set(device, loader);
}

export function getBackend(device: Device): Backend {
  let b = backends.get(device);
  if (!b) {
    const load = loaders.get(device);
    if (!load) throw new Error(`no backend registered for device '${device}'`);
    b = load();
    backends.set(device, b);
  }
  return b;
}
