/** Storage of a traced tensor: no memory, just the id of the graph value it stands for. */
import type { DType, HostArray } from '../ir/dtype.ts';
import type { Attrs, OpDef } from '../ir/registry.ts';
import type { Backend, Device, KernelArg, Storage, TensorArg } from '../runtime/backend.ts';

export class TraceBackend implements Backend {
  constructor(
    readonly device: Device,
    private readonly fail: (what: string) => Error,
  ) {}
  alloc(): Storage {
    throw this.fail('allocating device memory');
  }
  fromHost(_d: HostArray, _t: DType): Storage {
    throw this.fail('creating a tensor from host data');
  }
  exec(_op: OpDef, _a: KernelArg[], _at: Attrs, _o: TensorArg): void {
    throw this.fail('running a kernel');
  }
  check(): void {
    throw this.fail('checking values');
  }
  read(): Promise<HostArray> {
    throw this.fail('reading values');
  }
  readSync(): HostArray {
    throw this.fail('reading values');
  }
}

export class TraceStorage implements Storage {
  version = 0;
  /** The graph value it holds now: `id`, until an in-place write records a new one. */
  value: number;
  constructor(
    readonly backend: TraceBackend,
    readonly dtype: DType,
    readonly size: number,
    /** The tracer that made it: a traced value is meaningless outside its own trace. */
    readonly owner: object,
    readonly id: number,
  ) {
    this.value = id;
  }
}
