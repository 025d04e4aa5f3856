/**
 * Runs the SIMD expression kernels of codegen-cpu/wasm/expr-simd.ts in the matmul engine's
 * memory (./wasm-gemm.ts): operands copied in (a memcpy each), the kernel, the outputs copied
 * out. A matmul epilogue runs right after the product, which it reads where the GEMM left it.
 * Each function returns false, having written nothing, where the kernel cannot run here (no
 * WebAssembly SIMD, too little memory, scalars a float32 kernel would change): the caller then
 * runs the JavaScript loop.
 */
import { layoutElements, simdModuleBytes, type SimdKernel } from '../../codegen-cpu/wasm/expr-simd.ts';
import type { HostArray } from '../../ir/dtype.ts';
import { getEngine, type WasmGemm } from './wasm-gemm.ts';
import { residentAddress } from './wasm-resident.ts';

type Run = (...ptrs: number[]) => void;
const instances = new WeakMap<WasmGemm, Map<SimdKernel, Run>>();

/** How many kernels ran in Wasm and how many fell back to JavaScript (tests read it). */
export const simdKernelCounters = { wasm: 0, fallback: 0 };

function runnerOf(e: WasmGemm, k: SimdKernel): Run {
  let m = instances.get(e);
  if (!m) instances.set(e, (m = new Map()));
  let run = m.get(k);
  if (!run) {
    const module = new WebAssembly.Module(simdModuleBytes(k, e.memoryLimits));
    run = new WebAssembly.Instance(module, { env: { mem: e.memory } }).exports.run as Run;
    m.set(k, run);
  }
  return run;
}

/**
 * Whether float32 scalars give what the JavaScript loop's doubles give within float32
 * rounding: none overflows or underflows to 0 as a float32, and a scalar compared with is a
 * float32 number (x <= 0.1 and x <= fround(0.1) differ at x = fround(0.1)).
 */
export function scalarsFit(k: SimdKernel, sc: readonly number[]): boolean {
  for (let s = 0; s < k.scalars; s++) {
    const v = sc[s]!;
    if (!Number.isFinite(v)) continue;
    const f = Math.fround(v);
    if (!Number.isFinite(f) || (f === 0 && v !== 0)) return false;
  }
  return k.exactScalars.every((s) => Number.isNaN(sc[s]!) || Math.fround(sc[s]!) === sc[s]);
}

const align = (bytes: number) => Math.ceil(bytes / 64) * 64;
const elementBytes = (dtype: 'float32' | 'bool') => (dtype === 'float32' ? 4 : 1);

/** Bytes the kernel's operands, outputs and scalars take in the memory (input `preset` excepted: it is there already). */
export function simdBytes(k: SimdKernel, preset = -1): number {
  let n = align(4 * k.scalars);
  k.inputs.forEach((t, i) => {
    if (!('alias' in t) && i !== preset) n += align(elementBytes(t.dtype) * layoutElements(t.layout, k.rows, k.cols));
  });
  for (const o of k.outputs) n += align(elementBytes(o.dtype) * k.rows * k.cols);
  return n;
}

function copyIn(heap: { f32: Float32Array; u8: Uint8Array }, dtype: 'float32' | 'bool', src: HostArray, n: number, at: number): void {
  const from = src.length === n ? src : src.subarray(0, n);
  if (dtype === 'float32') heap.f32.set(from as Float32Array, at / 4);
  else heap.u8.set(from as Uint8Array, at);
}

/** Lays the kernel out from byte `free`, copies in, runs, copies out. */
function runAt(e: WasmGemm, k: SimdKernel, ins: (HostArray | null)[], outs: HostArray[], sc: readonly number[], free: number, preset?: { input: number; at: number }): void {
  const heap = e.heap();
  const total = k.rows * k.cols;
  let at = free;
  const take = (bytes: number) => {
    const p = at;
    at += align(bytes);
    return p;
  };
  const scAt = take(4 * k.scalars);
  for (let s = 0; s < k.scalars; s++) heap.f32[scAt / 4 + s] = sc[s]!;
  // an output whose data lives in the memory (./wasm-resident.ts) is written, and read as its old value, in place
  const outResident = outs.map((o) => residentAddress(o));
  const outAt = k.outputs.map((o, j) => (outResident[j]! >= 0 ? outResident[j]! : take(elementBytes(o.dtype) * total)));
  const ptrs: number[] = [];
  k.inputs.forEach((t, i) => {
    if ('alias' in t) {
      if (outResident[t.alias]! < 0) copyIn(heap, k.outputs[t.alias]!.dtype, outs[t.alias]!, total, outAt[t.alias]!);
      return;
    }
    if (preset && preset.input === i) {
      ptrs.push(preset.at);
      return;
    }
    const at = residentAddress(ins[i]!);
    if (at >= 0) {
      ptrs.push(at);
      return;
    }
    const n = layoutElements(t.layout, k.rows, k.cols);
    const p = take(elementBytes(t.dtype) * n);
    copyIn(heap, t.dtype, ins[i]!, n, p);
    ptrs.push(p);
  });
  runnerOf(e, k)(...ptrs, ...outAt, scAt);
  k.outputs.forEach((o, j) => {
    if (outResident[j]! >= 0) return;
    const out = outs[j]!;
    if (o.dtype === 'float32') (out as Float32Array).set(heap.f32.subarray(outAt[j]! / 4, outAt[j]! / 4 + total));
    else (out as Uint8Array).set(heap.u8.subarray(outAt[j]!, outAt[j]! + total));
  });
  simdKernelCounters.wasm++;
}

/** An elementwise kernel: ins per body input (null for an alias: its old value is in the output). */
export function runSimdKernel(k: SimdKernel, ins: (HostArray | null)[], outs: HostArray[], sc: readonly number[]): boolean {
  const e = getEngine();
  if (!e || !scalarsFit(k, sc)) return fallback();
  const free = e.reserve(simdBytes(k));
  if (free === null) return fallback();
  runAt(e, k, ins, outs, sc, free);
  return true;
}

/**
 * C = op(A) @ op(B) then the epilogue `k` over [M, N], whose input `acc` (-1: none) is the
 * product, read in the memory; `cOut` receives the product too where C is an output.
 * `onProduct` is called between the two (profiles time them apart).
 */
export function runMatmulSimdEpilogue(
  a: Float32Array, transA: boolean, b: Float32Array, transB: boolean, M: number, K: number, N: number,
  k: SimdKernel, acc: number, ins: (HostArray | null)[], outs: HostArray[], sc: readonly number[],
  cOut: Float32Array | null, onProduct?: () => void,
  /** byte addresses where a and b were already copied into the memory for this call (./wasm-staging.ts), or -1 */
  staged?: { a: number; b: number },
): boolean {
  const e = getEngine();
  if (!e || M <= 0 || N <= 0 || K <= 0 || k.rows * k.cols !== M * N || !scalarsFit(k, sc)) return fallback();
  const at = (x: Float32Array, s: number | undefined) => { const r = residentAddress(x); return r >= 0 ? r : (s ?? -1); };
  const p = e.product(a, 0, transA, b, 0, transB, M, K, N, simdBytes(k, acc), { a: at(a, staged?.a), b: at(b, staged?.b) });
  if (!p) return fallback();
  if (cOut) cOut.set(e.heap().f32.subarray(p.c / 4, p.c / 4 + M * N));
  onProduct?.();
  runAt(e, k, ins, outs, sc, p.free, acc >= 0 ? { input: acc, at: p.c } : undefined);
  return true;
}

function fallback(): false {
  simdKernelCounters.fallback++;
  return false;
}
