/** Browsers: no helper threads (yet); every cpu matmul runs on the calling thread. */
import type { GemmHelpers } from './threads.ts';

export type { GemmHelpers, GemmJob } from './threads.ts';
export const MAX_JOBS = 64;
export const JOB_GEMM = 0;
export const JOB_PACK = 1;
export const JOB_GEMM_NT = 2;

export function gemmHelpers(_module: WebAssembly.Module, _memory: WebAssembly.Memory, _workBytes: number): GemmHelpers | null {
  return null;
}
