/**
 * WebAssembly features the cpu kernels may use, in Node. Relaxed SIMD (its fused
 * multiply-add roughly doubles the matmul's peak where the CPU has FMA) is on by default from
 * V8 11.4 (Node 22, Chrome 114) and behind --experimental-wasm-relaxed-simd in Node 20's V8:
 * it is turned on here, like gc.ts turns on gc(). WGTORCH_WASM_FMA=0 keeps it off (plain
 * f32x4 multiply then add). The browser twin leaves the page's engine as it is.
 */
import { setFlagsFromString } from 'node:v8';
import { envVar } from './env.ts';

let tried = false;

/** Whether the caller should try relaxed SIMD (the caller still validates its module). */
export function enableRelaxedSimd(): boolean {
  if (envVar('WGTORCH_WASM_FMA') === '0') return false;
  if (!tried) {
    tried = true;
    try {
      setFlagsFromString('--experimental-wasm-relaxed-simd');
    } catch {
      // an engine without the flag: validation decides
    }
  }
  return true;
}
