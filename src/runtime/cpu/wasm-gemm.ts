/**
 * The float32 matmul on the CPU through the generated WebAssembly SIMD128 kernel
 * (codegen-cpu/wasm/gemm-module.ts). Operands are copied into the module's memory (a
 * memcpy each), the kernel packs B (and a transposed A) into panels once, multiplies, and the
 * result is copied out. Large products
 * are split between this thread and the helpers of `src/platform/threads.ts` (worker_threads
 * in Node; none in the browser build, whose twin runs everything on the calling thread).
 */
import { GEMM_A_PACKED, GEMM_B_IN_PLACE, GEMM_SHAPE, gemmModuleBytes, gemmWorkBytes, packedElements, type GemmShape } from '../../codegen-cpu/wasm/gemm-module.ts';
import { DOT_COLS, DOT_KC, DOT_ROWS } from '../../codegen-cpu/wasm/gemm-nt-dot.ts';
import { envVar } from '../../platform/env.ts';
import { gemmHelpers, JOB_GEMM, JOB_GEMM_NT, JOB_PACK, MAX_JOBS, type GemmHelpers, type GemmJob } from '../../platform/threads.ts';
import { enableRelaxedSimd } from '../../platform/wasm-features.ts';

const PAGE = 65536;
const MAX_PAGES = 32768; // 2 GiB: the memory reserves address space up to this, and grows on demand
/** below this many flops a second thread costs more (wake-up, cache traffic) than it saves */
const PARALLEL_FLOPS = 2e6;
/** the least work of one chunk of a split product */
const CHUNK_FLOPS = 1e6;
/** below this many packed elements an operand is packed by the calling thread alone */
const PARALLEL_PACK = 1 << 18;
/**
 * the largest K block of A (bytes) for which A @ B^T runs the unpacked dot-product kernel: every
 * group of 4 rows of B sweeps all of A's block, which must stay in L2 (larger products keep the
 * packed kernel, whose blocking bounds that traffic)
 */
const DOT_MAX_A_BLOCK = 256 << 10;
/** the most rows (K) of a row-major B that the packed kernel reads in place instead of packing */
const B_IN_PLACE_MAX_K = 64;

export interface WasmGemmOptions {
  /** fused multiply-add through relaxed SIMD where the engine validates it (default: yes) */
  fma?: boolean;
  /** helper threads on shared memory where the platform has them (default: yes) */
  threads?: boolean;
  /** register tile and cache blocks (default GEMM_SHAPE; for tuning) */
  shape?: GemmShape;
}

/** One instance of the kernel over its own memory (and, with threads, its own helpers). */
export interface WasmGemm {
  readonly fma: boolean;
  /** 1 + the helpers up */
  threads(): number;
  /** matmulF32's contract; false where the operands do not fit the memory */
  matmul(
    a: Float32Array, aOff: number, transA: boolean,
    b: Float32Array, bOff: number, transB: boolean,
    out: Float32Array, outOff: number,
    M: number, K: number, N: number,
  ): boolean;
  /** `count` products, the i-th from element offsets aOff + i*strideA, bOff + i*strideB into outOff + i*strideC
   * (a stride 0 shares one operand); false where they do not fit */
  matmulBatched(
    a: Float32Array, aOff: number, strideA: number, transA: boolean,
    b: Float32Array, bOff: number, strideB: number, transB: boolean,
    out: Float32Array, outOff: number, strideC: number,
    M: number, K: number, N: number, count: number,
  ): boolean;
  /** out = src^T for src [rows, cols] (row-major), through the packing kernel's 4 x 4 register transposes; false where it does not fit */
  transpose(src: Float32Array, srcOff: number, rows: number, cols: number, out: Float32Array, outOff: number): boolean;
  /** the memory the kernels run in: other modules (the SIMD epilogues) import it with these limits */
  readonly memory: WebAssembly.Memory;
  readonly memoryLimits: { min: number; max: number; shared: boolean };
  /**
   * op(A) @ op(B) (matmul's layout) left in the Wasm memory for a kernel that reads it there:
   * the product's byte address, and the first free byte after it with `extraBytes` more
   * available from there; null where that does not fit. Valid until the next call.
   */
  product(
    a: Float32Array, aOff: number, transA: boolean,
    b: Float32Array, bOff: number, transB: boolean,
    M: number, K: number, N: number, extraBytes: number,
    /** byte addresses of a and b where their data already lives in the memory (-1: copy it in) */
    resident?: { a: number; b: number },
  ): { c: number; free: number } | null;
  /** the byte address of `bytes` free bytes of the memory (past every thread's scratch), or null; valid until the next call */
  reserve(bytes: number): number | null;
  /** views of the memory as it is now (a grow replaces the buffer: take them after product or reserve) */
  heap(): { f32: Float32Array; u8: Uint8Array };
  /**
   * `bytes` of the memory that no call's scratch overwrites until freeResident, for data that
   * lives there: its byte address, or null (a memory that is not shared, whose views a grow
   * would detach; or no room)
   */
  allocResident(bytes: number): number | null;
  freeResident(at: number): void;
}

let engine: WasmGemm | null | undefined;
let threadCap = Infinity;
/** whether A @ B^T may run the unpacked dot-product kernel (WGTORCH_WASM_NT_DOT=0: always the packed one) */
let ntDot = envVar('WGTORCH_WASM_NT_DOT') !== '0';

/** whether a row-major B of at most B_IN_PLACE_MAX_K rows is read in place (WGTORCH_WASM_B_IN_PLACE=0: always packed) */
let bInPlace = envVar('WGTORCH_WASM_B_IN_PLACE') !== '0';

/** Picks whether a short row-major B is read in place or packed (the same bits either way; benchmarks compare the two). */
export function setWasmGemmBInPlace(on: boolean): void {
  bInPlace = on;
}

/** Products run by each kernel so far (tests read it): the dot-product A @ B^T one, the packed one, and of those how many read B in place. */
export const gemmKernelCounts = { dot: 0, packed: 0, bInPlace: 0 };

/** Picks the kernel of A @ B^T (benchmarks compare the two in one process): the dot-product one where it fits, or always the packed one. */
export function setWasmGemmNtDot(on: boolean): void {
  ntDot = on;
}

/** Caps the threads one product may use (benchmarks measure 1 and 2; WGTORCH_CPU_THREADS caps the helpers started). */
export function setWasmGemmThreads(n: number): void {
  threadCap = Math.max(1, Math.floor(n));
}

function validates(fma: boolean): boolean {
  try {
    return typeof WebAssembly !== 'undefined' && WebAssembly.validate(gemmModuleBytes({ memory: { min: 1, max: 1, shared: false }, fma }));
  } catch {
    return false;
  }
}

/** A kernel instance, or null where WebAssembly SIMD is missing (callers fall back to JavaScript). */
export function createWasmGemm(o: WasmGemmOptions = {}): WasmGemm | null {
  if (!validates(false)) return null;
  const fma = o.fma !== false && enableRelaxedSimd() && validates(true);
  const shape = o.shape ?? GEMM_SHAPE;
  const MR = shape.MR, NR = 4 * shape.NRV;
  const workBytes = gemmWorkBytes(shape);
  const initial = 16;
  let memory: WebAssembly.Memory;
  let shared = o.threads !== false;
  try {
    if (!shared) throw new Error('one thread');
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  } catch {
    // no SharedArrayBuffer (a page without cross-origin isolation): one thread
    shared = false;
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
  }
  const module = new WebAssembly.Module(gemmModuleBytes({ memory: { min: initial, max: MAX_PAGES, shared }, fma, shape }));
  const exports = new WebAssembly.Instance(module, { env: { mem: memory } }).exports;
  const gemm = exports.gemm as (...args: number[]) => void;
  const pack = exports.pack as (...args: number[]) => void;
  const gemmNT = exports.gemmNT as (...args: number[]) => void;
  const helpers: GemmHelpers | null = shared ? gemmHelpers(module, memory, workBytes) : null;
  let f32 = new Float32Array(memory.buffer);
  let u8 = new Uint8Array(memory.buffer);
  const own = (job: GemmJob) => (job[0] === JOB_PACK ? pack(...job.slice(1)) : job[0] === JOB_GEMM_NT ? gemmNT(...job.slice(1), 0) : gemm(...job.slice(1), 0));

  // blocks that stay (tensors' data living in the memory, ./wasm-resident.ts) sit between the
  // threads' scratch and the scratch of each call, which starts above the highest of them
  const workEnd = align((1 + (helpers?.slots ?? 0)) * workBytes);
  let residentTop = workEnd;
  const blocks = new Map<number, number>();
  let holes: { at: number; size: number }[] = [];
  const scratchBase = () => residentTop;

  const ensureBytes = (bytes: number) => {
    const have = memory.buffer.byteLength;
    if (bytes > have) memory.grow(Math.ceil((bytes - have) / PAGE));
    if (f32.buffer !== memory.buffer || f32.length * 4 !== memory.buffer.byteLength) f32 = new Float32Array(memory.buffer);
  };

  return {
    fma,
    threads: () => 1 + (helpers?.ready() ?? 0),
    memory,
    memoryLimits: { min: initial, max: MAX_PAGES, shared },
    heap() {
      if (u8.buffer !== f32.buffer) u8 = new Uint8Array(f32.buffer);
      return { f32, u8 };
    },
    allocResident(bytes) {
      if (!shared) return null;
      const size = align(Math.max(bytes, 1));
      const hole = holes.findIndex((h) => h.size >= size);
      let at: number;
      if (hole >= 0) {
        at = holes[hole]!.at;
        if (holes[hole]!.size === size) holes.splice(hole, 1);
        else holes[hole] = { at: at + size, size: holes[hole]!.size - size };
      } else {
        if (residentTop + size > MAX_PAGES * PAGE) return null;
        at = residentTop;
        ensureBytes(at + size);
        residentTop += size;
      }
      blocks.set(at, size);
      return at;
    },
    freeResident(at) {
      const size = blocks.get(at);
      if (size === undefined) return;
      blocks.delete(at);
      holes.push({ at, size });
      holes.sort((x, y) => x.at - y.at);
      // merge neighbours, then give the top back to the scratch
      const merged: typeof holes = [];
      for (const h of holes) {
        const last = merged[merged.length - 1];
        if (last && last.at + last.size === h.at) last.size += h.size;
        else merged.push({ ...h });
      }
      holes = merged;
      const top = holes[holes.length - 1];
      if (top && top.at + top.size === residentTop) {
        residentTop = top.at;
        holes.pop();
      }
    },
    reserve(bytes) {
      const at = scratchBase();
      if (at + bytes > MAX_PAGES * PAGE) return null;
      ensureBytes(at + bytes);
      return at;
    },
    matmul(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N) {
      const p = this.product(a, aOff, transA, b, bOff, transB, M, K, N, 0);
      if (!p) return false;
      out.set(f32.subarray(p.c / 4, p.c / 4 + M * N), outOff);
      return true;
    },
    product(a, aOff, transA, b, bOff, transB, M, K, N, extraBytes, resident) {
      const flops = 2 * M * N * K;
      const nHelpers = helpers && flops >= PARALLEL_FLOPS ? Math.min(threadCap - 1, helpers.ready()) : 0;
      const threads = nHelpers + 1;
      // A @ B^T with both read along K in place (no packing) where A's K block stays in L2
      const dot = dotKernel(transA, transB, M, K);
      // a transposed A is packed (reading it in place steps a whole row of memory per k); B is, but for the dot
      // kernel and a row-major B of few rows, whose rows the micro-kernel reads in place (every k a new row: with
      // K small the rows a panel touches stay in L1 and the TLB)
      const packA = !dot && transA && M > 1;
      const flatB = !dot && bInPlace && !transB && K <= B_IN_PLACE_MAX_K;
      // every thread's scratch first (this thread's at 0, helper h's at (h + 1) * work), then A, B, C and the packed operands
      const aAt = scratchBase();
      const bAt = aAt + align(4 * M * K);
      const cAt = bAt + align(4 * K * N);
      const bpAt = cAt + align(4 * M * N);
      const apAt = bpAt + (dot || flatB ? 0 : align(4 * packedElements(N, K, NR)));
      const end = apAt + (packA ? align(4 * packedElements(M, K, MR)) : 0);
      if (end + extraBytes > MAX_PAGES * PAGE) return null;
      ensureBytes(end + extraBytes);
      // an operand already in the memory is read where it lies (the GEMM only reads its operands)
      const aSrc = resident && resident.a >= 0 ? resident.a + 4 * aOff : aAt;
      const bSrc = resident && resident.b >= 0 ? resident.b + 4 * bOff : bAt;
      if (aSrc === aAt) f32.set(a.subarray(aOff, aOff + M * K), aAt / 4);
      if (bSrc === bAt) f32.set(b.subarray(bOff, bOff + K * N), bAt / 4);

      // C in chunks of its longer side (rows in multiples of the tile's, columns likewise), several per
      // thread so that whoever is running takes the next one
      const split = (tileM: number, tileN: number, job: (i0: number, i1: number, j0: number, j1: number) => GemmJob) => {
        if (nHelpers === 0) return own(job(0, M, 0, N));
        const chunks = Math.max(threads, Math.min(MAX_JOBS, 4 * threads, Math.floor(flops / CHUNK_FLOPS)));
        const jobs: GemmJob[] = [];
        if (M >= N) {
          const rows = Math.ceil(M / chunks / tileM) * tileM;
          for (let i0 = 0; i0 < M; i0 += rows) jobs.push(job(i0, Math.min(M, i0 + rows), 0, N));
        } else {
          const cols = Math.ceil(N / chunks / tileN) * tileN;
          for (let j0 = 0; j0 < N; j0 += cols) jobs.push(job(0, M, j0, Math.min(N, j0 + cols)));
        }
        helpers!.run(jobs, own);
      };
      if (dot) {
        gemmKernelCounts.dot++;
        split(DOT_ROWS, DOT_COLS, (i0, i1, j0, j1) => [JOB_GEMM_NT, aSrc, bSrc, cAt, M, K, N, i0, i1, j0, j1]);
        return { c: cAt, free: end };
      }
      const aI = transA ? 4 : 4 * K, aK = transA ? 4 * M : 4;
      const bK = transB ? 4 : 4 * N, bJ = transB ? 4 * K : 4;

      // phase 1: pack B (and a transposed A), in panel ranges shared between the threads when large
      gemmKernelCounts.packed++;
      if (flatB) gemmKernelCounts.bInPlace++;
      const packs: GemmJob[] = [];
      const packJobs = (src: number, kStride: number, laneStride: number, lanes: number, dst: number, width: number) => {
        const parts = nHelpers > 0 && lanes * K >= PARALLEL_PACK ? Math.min(2 * threads, Math.ceil(lanes / width)) : 1;
        const step = Math.ceil(lanes / parts / width) * width;
        for (let l0 = 0; l0 < lanes; l0 += step) packs.push([JOB_PACK, src, kStride, laneStride, lanes, K, dst, l0, Math.min(lanes, l0 + step), width]);
      };
      if (!flatB) packJobs(bSrc, bK, bJ, N, bpAt, NR);
      if (packA) packJobs(aSrc, aK, aI, M, apAt, MR);
      if (packs.length > 2 && helpers) helpers.run(packs, own);
      else packs.forEach(own);

      // phase 2: the packed GEMM
      const A = packA ? apAt : aSrc, B = flatB ? bSrc : bpAt;
      const flags = (packA ? GEMM_A_PACKED : 0) | (flatB ? GEMM_B_IN_PLACE : 0);
      split(MR, NR, (i0, i1, j0, j1) => [JOB_GEMM, A, aI, aK, flags, B, cAt, M, K, N, i0, i1, j0, j1]);
      return { c: cAt, free: end };
    },
    matmulBatched(a, aOff, strideA, transA, b, bOff, strideB, transB, out, outOff, strideC, M, K, N, count) {
      const flops = 2 * M * N * K;
      // products big enough to split run one by one, each on every thread
      if (count === 1 || flops >= PARALLEL_FLOPS) {
        for (let i = 0; i < count; i++) if (!this.matmul(a, aOff + i * strideA, transA, b, bOff + i * strideB, transB, out, outOff + i * strideC, M, K, N)) return false;
        return true;
      }
      // small products: every operand copied and packed once, then one job per product, over the threads when the batch pays
      // (A @ B^T by the kernel product() picks for it, so that a batch gives the bits of its products one by one)
      const nA = strideA === 0 ? 1 : count, nB = strideB === 0 ? 1 : count;
      const dot = dotKernel(transA, transB, M, K);
      const packA = !dot && transA && M > 1;
      const sizeA = M * K, sizeB = K * N, sizeC = M * N, sizeBp = dot ? 0 : packedElements(N, K, NR), sizeAp = packA ? packedElements(M, K, MR) : 0;
      const aAt = scratchBase();
      const bAt = aAt + align(4 * nA * sizeA);
      const cAt = bAt + align(4 * nB * sizeB);
      const bpAt = cAt + align(4 * count * sizeC);
      const apAt = bpAt + align(4 * nB * sizeBp);
      const end = apAt + align(4 * nA * sizeAp);
      if (end > MAX_PAGES * PAGE) return false;
      ensureBytes(end);
      const copyIn = (src: Float32Array, off: number, stride: number, n: number, size: number, at: number) => {
        if (n === 1 || stride === size) f32.set(src.subarray(off, off + n * size), at / 4);
        else for (let i = 0; i < n; i++) f32.set(src.subarray(off + i * stride, off + i * stride + size), at / 4 + i * size);
      };
      copyIn(a, aOff, strideA, nA, sizeA, aAt);
      copyIn(b, bOff, strideB, nB, sizeB, bAt);
      const aI = transA ? 4 : 4 * K, aK = transA ? 4 * M : 4;
      const bK = transB ? 4 : 4 * N, bJ = transB ? 4 * K : 4;
      if (!dot) for (let i = 0; i < nB; i++) pack(bAt + 4 * i * sizeB, bK, bJ, N, K, bpAt + 4 * i * sizeBp, 0, N, NR);
      if (packA) for (let i = 0; i < nA; i++) pack(aAt + 4 * i * sizeA, aK, aI, M, K, apAt + 4 * i * sizeAp, 0, M, MR);
      if (dot) gemmKernelCounts.dot += count;
      else gemmKernelCounts.packed += count;
      const job = (i: number): GemmJob => {
        const ia = strideA === 0 ? 0 : i, ib = strideB === 0 ? 0 : i;
        if (dot) return [JOB_GEMM_NT, aAt + 4 * ia * sizeA, bAt + 4 * ib * sizeB, cAt + 4 * i * sizeC, M, K, N, 0, M, 0, N];
        const A = packA ? apAt + 4 * ia * sizeAp : aAt + 4 * ia * sizeA;
        return [JOB_GEMM, A, aI, aK, packA ? GEMM_A_PACKED : 0, bpAt + 4 * ib * sizeBp, cAt + 4 * i * sizeC, M, K, N, 0, M, 0, N];
      };
      const nHelpers = helpers && count * flops >= PARALLEL_FLOPS ? Math.min(threadCap - 1, helpers.ready()) : 0;
      if (nHelpers === 0) {
        for (let i = 0; i < count; i++) own(job(i));
      } else {
        for (let i0 = 0; i0 < count; i0 += MAX_JOBS) helpers!.run(Array.from({ length: Math.min(MAX_JOBS, count - i0) }, (_, j) => job(i0 + j)), own);
      }
      if (strideC === sizeC) out.set(f32.subarray(cAt / 4, cAt / 4 + count * sizeC), outOff);
      else for (let i = 0; i < count; i++) out.set(f32.subarray(cAt / 4 + i * sizeC, cAt / 4 + (i + 1) * sizeC), outOff + i * strideC);
      return true;
    },
    transpose(src, srcOff, rows, cols, out, outOff) {
      // one panel as wide as src has rows, one group per column: group j is out's row j
      const sAt = scratchBase(), dAt = sAt + align(4 * rows * cols), end = dAt + align(4 * rows * cols);
      if (end > MAX_PAGES * PAGE) return false;
      ensureBytes(end);
      f32.set(src.subarray(srcOff, srcOff + rows * cols), sAt / 4);
      pack(sAt, 4, 4 * cols, rows, cols, dAt, 0, rows, rows);
      out.set(f32.subarray(dAt / 4, dAt / 4 + rows * cols), outOff);
      return true;
    },
  };
}

/** The shared instance (created on first use), or null where WebAssembly SIMD is missing. */
export function getEngine(): WasmGemm | null {
  if (engine === undefined) engine = createWasmGemm();
  return engine;
}

/** Whether the Wasm kernel runs here, on how many threads a large product splits, and whether it fuses multiply-adds. */
export function wasmGemmInfo(): { available: boolean; threads: number; fma: boolean } {
  const e = getEngine();
  return { available: !!e, threads: e ? e.threads() : 0, fma: !!e?.fma };
}

/**
 * out[M,N] = op(A) @ op(B) with the layout of matmulF32 (A [M,K] or [K,M] when transA, B [K,N]
 * or [N,K] when transB, element offsets). Returns false where the kernel is unavailable or the
 * operands do not fit its memory; the caller then runs the JavaScript kernel.
 */
export function wasmMatmulF32(
  a: Float32Array, aOff: number, transA: boolean,
  b: Float32Array, bOff: number, transB: boolean,
  out: Float32Array, outOff: number,
  M: number, K: number, N: number,
): boolean {
  const e = getEngine();
  return !!e && e.matmul(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N);
}

/** matmulF32Batched's contract (see matmul.ts); false where the kernel is unavailable or the operands do not fit. */
export function wasmMatmulF32Batched(
  a: Float32Array, aOff: number, strideA: number, transA: boolean,
  b: Float32Array, bOff: number, strideB: number, transB: boolean,
  out: Float32Array, outOff: number, strideC: number,
  M: number, K: number, N: number, count: number,
): boolean {
  const e = getEngine();
  return !!e && e.matmulBatched(a, aOff, strideA, transA, b, bOff, strideB, transB, out, outOff, strideC, M, K, N, count);
}

/** out = src^T for a float32 src [rows, cols]; false where the Wasm kernel is unavailable. */
export function wasmTransposeF32(src: Float32Array, srcOff: number, rows: number, cols: number, out: Float32Array, outOff: number): boolean {
  const e = getEngine();
  return !!e && e.transpose(src, srcOff, rows, cols, out, outOff);
}

const align = (bytes: number) => Math.ceil(bytes / 64) * 64;

/** Whether op(A) @ op(B) runs the unpacked dot-product kernel: A @ B^T whose K block of A stays in L2. */
function dotKernel(transA: boolean, transB: boolean, M: number, K: number): boolean {
  return ntDot && transB && !transA && 4 * M * Math.min(K, DOT_KC) <= DOT_MAX_A_BLOCK;
}
