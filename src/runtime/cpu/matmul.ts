/**
 * The CPU float32 matmul every cpu matmul goes through (eager ops and compiled kernels):
 * the generated WebAssembly SIMD kernel (./wasm-gemm.ts, on several threads for large
 * products), or the JavaScript kernel (./matmul-js.ts) where WebAssembly SIMD is missing.
 */
import { matmulF32Js } from './matmul-js.ts';
import { wasmMatmulF32 } from './wasm-gemm.ts';

export { matmulF32Js } from './matmul-js.ts';
export { setWasmGemmThreads, wasmGemmInfo } from './wasm-gemm.ts';

/** out[M,N] = op(A) @ op(B), overwriting out. A is stored row-major as [M,K], or as [K,M] when
 * transA; B as [K,N], or as [N,K] when transB; aOff/bOff/outOff are element offsets.
 * `out` must not overlap `a` or `b`. */
export function matmulF32(
  a: Float32Array, aOff: number, transA: boolean,
  b: Float32Array, bOff: number, transB: boolean,
  out: Float32Array, outOff: number,
  M: number, K: number, N: number,
): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    out.fill(0, outOff, outOff + M * N);
    return;
  }
  if (!wasmMatmulF32(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N)) matmulF32Js(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N);
}
