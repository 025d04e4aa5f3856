/**
 * Float32 cpu tensors whose data lives in the Wasm memory, so that the SIMD kernels that
 * update them every step (a weight's Adam update in its gradient's matmul epilogue: the
 * weight and both moments) read and write them in place instead of copying each in and out.
 *
 * Only on a shared memory: a grow gives a shared memory a longer buffer but never detaches
 * the old one, so a view made before stays valid (a non-shared memory's views would detach,
 * and then nothing moves). The storage keeps its identity, dtype and length; only its `data`
 * becomes a Float32Array view of the memory, which everything that reads `data` reads as
 * before (reads copy out with slice; webgpu uploads and files take such views). The block
 * goes back to the engine when that view is collected, never while anything can still see it.
 */
import type { CpuStorage } from './backend.ts';
import { getEngine, type WasmGemm } from './wasm-gemm.ts';

const addressOf = new WeakMap<ArrayBufferView, number>();
const release = new FinalizationRegistry<{ e: WasmGemm; at: number }>(({ e, at }) => e.freeResident(at));

/** The byte address of a resident view in the engine's memory, or -1. */
export function residentAddress(a: ArrayBufferView): number {
  return addressOf.get(a) ?? -1;
}

/** Moves a float32 storage's data into the Wasm memory; false (nothing changed) where it cannot. */
export function makeResident(s: CpuStorage): boolean {
  const data = s.data;
  if (!(data instanceof Float32Array)) return false;
  if (addressOf.has(data)) return true;
  if (s.pending) return false;
  const e = getEngine();
  if (!e) return false;
  const at = e.allocResident(4 * data.length);
  if (at === null) return false;
  const view = new Float32Array(e.memory.buffer, at, data.length);
  view.set(data);
  s.data = view;
  addressOf.set(view, at);
  release.register(view, { e, at });
  return true;
}
