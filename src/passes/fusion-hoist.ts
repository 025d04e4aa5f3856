/**
 * Kernels are created in the order of the user's code, and an epilogue may only read what
 * earlier kernels wrote. Attention is often written with its mask after the scores
 * (`att = q.matmul(k.transpose(-2, -1)).mul(s); mask = ...; att.maskedFill(mask, -inf)`), so
 * the mask's kernels come after the matmul that should apply it. They depend on nothing the
 * matmul or later kernels compute, so they can run first: this finds that order.
 */

/**
 * A new kernel order (old indices) that runs `wanted` (and every kernel after `target` they
 * depend on) right before `target`, or null when one of them depends on `target` itself
 * or may not move.
 */
export function hoistBefore(count: number, target: number, wanted: readonly number[], dependsOn: (k: number) => number[], movable: (k: number) => boolean): number[] | null {
  const moved = new Set<number>();
  const stack = wanted.filter((k) => k > target);
  if (!stack.length) return null;
  while (stack.length) {
    const k = stack.pop()!;
    if (moved.has(k)) continue;
    if (!movable(k)) return null;
    moved.add(k);
    for (const d of dependsOn(k)) {
      if (d === target) return null;
      if (d > target && d !== k) stack.push(d);
    }
  }
  const order: number[] = [];
  for (let k = 0; k < target; k++) order.push(k);
  order.push(...[...moved].sort((a, b) => a - b), target);
  for (let k = target + 1; k < count; k++) if (!moved.has(k)) order.push(k);
  return order;
}
