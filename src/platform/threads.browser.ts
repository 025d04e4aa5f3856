/** Browsers: no helper threads (yet); every cpu matmul runs on the calling thread. */
import type { GemmHelpers } from './threads.ts';

export type { GemmArgs, GemmHelpers } from './threads.ts';

export function gemmHelpers(_module: WebAssembly.Module, _memory: WebAssembly.Memory): GemmHelpers | null {
  return null;
}
