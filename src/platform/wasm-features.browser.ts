/** Browsers: relaxed SIMD where the engine ships it (the caller validates its module). */
export function enableRelaxedSimd(): boolean {
  return true;
}
