/**
 * Swapping the last two dims of a row-major array (the permute behind `.t()`, `x W^T`, and
 * their gradients) in square tiles: read row by row within a tile, written column by column,
 * so both sides stay in a few cache lines and pages. Element by element through the strided
 * copy kernel, every read of a 100 x 1000 transpose touched a new line 4 KB away. Large
 * float32 ones go through the Wasm GEMM's packing kernel, which transposes 4 x 4 in registers.
 */
import type { HostArray } from '../../ir/dtype.ts';
import { wasmTransposeF32 } from './wasm-gemm.ts';

const TILE = 32;
/** float32 transposes this large, with rows a multiple of 4, go through the Wasm kernel's 4 x 4 register transposes (~3x) */
const WASM_MIN = 4096;

/** Whether permuting `shape` by `dims` only swaps its last two dims (leading dims stay). */
export function swapsLastTwo(dims: readonly number[]): boolean {
  const r = dims.length;
  if (r < 2 || dims[r - 1] !== r - 2 || dims[r - 2] !== r - 1) return false;
  for (let i = 0; i < r - 2; i++) if (dims[i] !== i) return false;
  return true;
}

/** out[b, j, i] = src[b, i, j] for src of shape [..., rows, cols] (b over the leading dims). */
export function transposeLastTwo(src: HostArray, shape: readonly number[], out: HostArray): void {
  const r = shape.length;
  const rows = shape[r - 2], cols = shape[r - 1];
  let batches = 1;
  for (let i = 0; i < r - 2; i++) batches *= shape[i];
  const size = rows * cols;
  if (src instanceof Float32Array && out instanceof Float32Array && rows % 4 === 0 && size >= WASM_MIN) {
    let b = 0;
    while (b < batches && wasmTransposeF32(src, b * size, rows, cols, out, b * size)) b++;
    if (b === batches) return;
  }
  for (let b = 0, o = 0; b < batches; b++, o += size) {
    for (let i0 = 0; i0 < rows; i0 += TILE) {
      const i1 = Math.min(rows, i0 + TILE);
      for (let j0 = 0; j0 < cols; j0 += TILE) {
        const j1 = Math.min(cols, j0 + TILE);
        for (let i = i0; i < i1; i++) {
          const s = o + i * cols;
          for (let j = j0; j < j1; j++) out[o + j * rows + i] = src[s + j];
        }
      }
    }
  }
}
