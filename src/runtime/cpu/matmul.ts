/**
 * The CPU float32 matmul every cpu matmul goes through (eager ops and compiled kernels):
 * the generated WebAssembly SIMD kernel (./wasm-gemm.ts, on several threads for large
 * products), or the JavaScript kernel (./matmul-js.ts) where WebAssembly SIMD is missing.
 */
import { emptyProduct, matmulF32Js } from './matmul-js.ts';
import { wasmMatmulF32, wasmMatmulF32Batched } from './wasm-gemm.ts';

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
  if (emptyProduct(out, outOff, M, K, N)) return;
  if (!wasmMatmulF32(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N)) matmulF32Js(a, aOff, transA, b, bOff, transB, out, outOff, M, K, N);
}

/** `count` products of matmulF32's layout: the i-th reads A at aOff + i*strideA and B at
 * bOff + i*strideB and writes out at outOff + i*strideC (element offsets; a stride of 0
 * shares one operand between all). Small products are copied and packed once for the whole
 * batch and spread over the threads, which a loop of matmulF32 calls cannot do. */
export function matmulF32Batched(
  a: Float32Array, aOff: number, strideA: number, transA: boolean,
  b: Float32Array, bOff: number, strideB: number, transB: boolean,
  out: Float32Array, outOff: number, strideC: number,
  M: number, K: number, N: number, count: number,
): void {
  if (count <= 0 || M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (let i = 0; i < count; i++) emptyProduct(out, outOff + i * strideC, M, K, N);
    return;
  }
  if (wasmMatmulF32Batched(a, aOff, strideA, transA, b, bOff, strideB, transB, out, outOff, strideC, M, K, N, count)) return;
  for (let i = 0; i < count; i++) matmulF32Js(a, aOff + i * strideA, transA, b, bOff + i * strideB, transB, out, outOff + i * strideC, M, K, N);
}
