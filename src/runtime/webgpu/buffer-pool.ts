// Size-bucketed pool of GPUBuffers, so steady-state work creates no buffers.
//
// Why reuse needs no fences: everything this runtime does goes through one
// GPUQueue, whose operations (submit, writeBuffer, copies) execute in the
// order they were issued, and inside a command buffer dispatches and copies
// execute in recording order with the implementation inserting the barriers.
// So a buffer that is released while commands reading it are still recorded
// or in flight can be handed out at once to a *later recorded* command that
// overwrites it: the overwrite runs after the reads. destroy() on a buffer
// still in use is also legal; the implementation frees it once the GPU is done.
//
// The one operation that jumps the line is queue.writeBuffer while commands
// are still recorded in an open, unsubmitted encoder: it executes before them.
// GPUContext.write therefore flushes the open batch first when that batch uses
// the target buffer. Readback staging buffers (MAP_READ) live in their own
// pool and go back only after unmap.
//
// Releasing when a tensor dies (FinalizationRegistry or explicit dispose) is
// the caller's business; the pool just takes release() calls.

export interface PoolStats {
  /** buffers handed out by acquire() and not released yet */
  liveBuffers: number;
  /** their allocated sizes (the size class, not the requested size) */
  liveBytes: number;
  /** released buffers waiting for reuse */
  pooledBuffers: number;
  pooledBytes: number;
  /** createBuffer calls ever made by this pool */
  created: number;
}

/**
 * Rounds a request up to its size class: multiples of 16 up to 64 bytes, then
 * four classes per octave (at most 25% waste). 16 keeps vec4 arrays and every
 * offset alignment WebGPU asks for happy.
 */
export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes));
  if (b <= 64) return Math.ceil(b / 16) * 16;
  const step = 2 ** (Math.ceil(Math.log2(b)) - 3); // p/4 where p = 2^(ceil(log2 b) - 1)
  return Math.ceil(b / step) * step;
}

export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private live = new Map<GPUBuffer, number>();
  /** creation order, for settle() */
  private serial = new WeakMap<GPUBuffer, number>();
  private counts = { liveBytes: 0, pooledBuffers: 0, pooledBytes: 0, created: 0 };

  constructor(
    private readonly device: GPUDevice,
    readonly usage: GPUBufferUsageFlags = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    readonly label = 'pool',
  ) {}

  private classFor(bytes: number): number {
    const { maxBufferSize, maxStorageBufferBindingSize } = this.device.limits;
    let size = sizeClass(bytes);
    // Rounding up must not push a bindable buffer past what can be bound whole.
    const cap = this.usage & GPUBufferUsage.STORAGE ? Math.min(maxBufferSize, maxStorageBufferBindingSize) : maxBufferSize;
    if (size > cap && bytes <= cap) size = Math.min(Math.ceil(bytes / 4) * 4, cap);
    if (size > maxBufferSize) {
      throw new Error(`BufferPool: ${bytes} bytes exceeds this device's maxBufferSize (${maxBufferSize})`);
    }
    return size;
  }

  /** bytes of the largest request acquire() served since the last resetLargest() (tests check what an op allocates) */
  largestRequest = 0;
  resetLargest(): void {
    this.largestRequest = 0;
  }

  acquire(bytes: number): GPUBuffer {
    this.largestRequest = Math.max(this.largestRequest, bytes);
    const size = this.classFor(bytes);
    let buf = this.free.get(size)?.pop();
    if (buf) {
      this.counts.pooledBuffers--;
      this.counts.pooledBytes -= size;
    } else {
      buf = this.device.createBuffer({ size, usage: this.usage, label: `${this.label}:${size}` });
      this.serial.set(buf, this.counts.created++);
    }
    this.live.set(buf, size);
    this.counts.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const size = this.live.get(buf);
    if (size === undefined) throw new Error(`BufferPool(${this.label}): release of a buffer that is not live in this pool (double release?)`);
    this.live.delete(buf);
    this.counts.liveBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(buf); // LIFO: a repeated step gets the same buffers back, which keeps bind-group caches hot
    this.counts.pooledBuffers++;
    this.counts.pooledBytes += size;
  }

  /**
   * Orders each size class's free buffers by creation, oldest handed out first: after many
   * releases in an order nobody chose (finalizers run by a collection), what acquire() hands
   * out depends only on which buffers are free, so a repeated step finds its bind groups again.
   */
  settle(): void {
    for (const list of this.free.values()) list.sort((a, b) => this.serial.get(b)! - this.serial.get(a)!);
  }

  /** Destroys every pooled (released) buffer; live ones are untouched. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    this.free.clear();
    this.counts.pooledBuffers = 0;
    this.counts.pooledBytes = 0;
  }

  stats(): PoolStats {
    return { liveBuffers: this.live.size, ...this.counts };
  }
}
