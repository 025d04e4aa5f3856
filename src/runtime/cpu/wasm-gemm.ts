/**
 * The float32 matmul on the CPU through the generated WebAssembly SIMD128 kernel
 * (codegen-cpu/wasm/gemm-module.ts). Operands are copied into the module's memory (a
 * memcpy each), the kernel packs and multiplies, the result is copied out. Large products
 * are split between this thread and the helpers of `src/platform/threads.ts` (worker_threads
 * in Node; none in the browser build, whose twin runs everything on the calling thread).
 */
import { GEMM_SHAPE, gemmModuleBytes, gemmWorkBytes } from '../../codegen-cpu/wasm/gemm-module.ts';
import { gemmHelpers, MAX_JOBS, type GemmHelpers, type GemmJob } from '../../platform/threads.ts';

const PAGE = 65536;
const MAX_PAGES = 32768; // 2 GiB: the memory reserves address space up to this, and grows on demand
const NR = 4 * GEMM_SHAPE.NRV;
/** below this many flops a second thread costs more (wake-up, cache traffic) than it saves */
const PARALLEL_FLOPS = 2e6;
/** the least work of one chunk of a split product */
const CHUNK_FLOPS = 1e6;

interface Engine {
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  gemm: (...args: [...GemmJob, number]) => void;
  shared: boolean;
  helpers: GemmHelpers | null;
  f32: Float32Array;
}

let engine: Engine | null | undefined;
let threadCap = Infinity;

/** Caps the threads one product may use (benchmarks measure 1 and 2; WGTORCH_CPU_THREADS caps the helpers started). */
export function setWasmGemmThreads(n: number): void {
  threadCap = Math.max(1, Math.floor(n));
}

function simdSupported(): boolean {
  try {
    return typeof WebAssembly !== 'undefined' && WebAssembly.validate(gemmModuleBytes({ min: 1, max: 1, shared: false }));
  } catch {
    return false;
  }
}

/** The kernel, or null where WebAssembly SIMD is missing (callers fall back to JavaScript). */
function getEngine(): Engine | null {
  if (engine !== undefined) return engine;
  if (!simdSupported()) return (engine = null);
  const workBytes = gemmWorkBytes();
  const initial = Math.ceil((4 * workBytes) / PAGE) + 16;
  let memory: WebAssembly.Memory;
  let shared = true;
  try {
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES, shared: true });
  } catch {
    // no SharedArrayBuffer (a page without cross-origin isolation): one thread
    shared = false;
    memory = new WebAssembly.Memory({ initial, maximum: MAX_PAGES });
  }
  const module = new WebAssembly.Module(gemmModuleBytes({ min: initial, max: MAX_PAGES, shared }));
  const instance = new WebAssembly.Instance(module, { env: { mem: memory } });
  const e: Engine = {
    memory,
    module,
    shared,
    gemm: instance.exports.gemm as Engine['gemm'],
    helpers: null,
    f32: new Float32Array(memory.buffer),
  };
  if (shared) e.helpers = gemmHelpers(module, memory, workBytes);
  return (engine = e);
}

/** Whether the Wasm kernel runs here, and on how many threads a large product splits. */
export function wasmGemmInfo(): { available: boolean; threads: number } {
  const e = getEngine();
  return { available: !!e, threads: e ? 1 + (e.helpers?.ready() ?? 0) : 0 };
}

function ensureBytes(e: Engine, bytes: number): void {
  const have = e.memory.buffer.byteLength;
  if (bytes > have) e.memory.grow(Math.ceil((bytes - have) / PAGE));
  if (e.f32.buffer !== e.memory.buffer || e.f32.length * 4 !== e.memory.buffer.byteLength) e.f32 = new Float32Array(e.memory.buffer);
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
  if (!e) return false;
  const helpers = e.shared && 2 * M * N * K >= PARALLEL_FLOPS ? Math.min(threadCap - 1, e.helpers?.ready() ?? 0) : 0;
  const work = gemmWorkBytes();
  // every thread's scratch first (this thread's at 0, helper h's at (h + 1) * work), then A, B, C
  const aAt = (1 + (e.helpers?.slots ?? 0)) * work;
  const bAt = aAt + align(4 * M * K);
  const cAt = bAt + align(4 * K * N);
  const end = cAt + align(4 * M * N);
  if (end > MAX_PAGES * PAGE) return false;
  ensureBytes(e, end);
  const f = e.f32;
  f.set(a.subarray(aOff, aOff + M * K), aAt / 4);
  f.set(b.subarray(bOff, bOff + K * N), bAt / 4);
  const aI = transA ? 4 : 4 * K, aK = transA ? 4 * M : 4;
  const bK = transB ? 4 : 4 * N, bJ = transB ? 4 * K : 4;
  if (helpers === 0) {
    e.gemm(aAt, aI, aK, bAt, bK, bJ, cAt, M, K, N, 0, N, 0);
  } else {
    // chunks of the longer side of C (rows by offsetting A and C, columns in multiples of NR),
    // several per thread so that whoever is running takes the next one
    const threads = helpers + 1;
    const chunks = Math.max(threads, Math.min(MAX_JOBS, 4 * threads, Math.floor((2 * M * N * K) / CHUNK_FLOPS)));
    const jobs: GemmJob[] = [];
    if (M >= N) {
      const rows = Math.ceil(M / chunks / 4) * 4;
      for (let i0 = 0; i0 < M; i0 += rows) jobs.push([aAt + i0 * aI, aI, aK, bAt, bK, bJ, cAt + 4 * i0 * N, Math.min(rows, M - i0), K, N, 0, N]);
    } else {
      const cols = Math.ceil(N / chunks / NR) * NR;
      for (let j0 = 0; j0 < N; j0 += cols) jobs.push([aAt, aI, aK, bAt, bK, bJ, cAt, M, K, N, j0, Math.min(N, j0 + cols)]);
    }
    e.helpers!.run(jobs, (job) => e.gemm(...job, 0));
  }
  out.set(e.f32.subarray(cAt / 4, cAt / 4 + M * N), outOff);
  return true;
}

const align = (bytes: number) => Math.ceil(bytes / 64) * 64;
