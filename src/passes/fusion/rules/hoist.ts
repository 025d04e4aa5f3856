/**
 * [hoist] kernels are formed in the order of the user's code, and an epilogue may only read
 * what earlier kernels wrote. Attention is often written with its mask after the scores
 * (`att = q.matmul(k.transpose(-2, -1)).mul(s); mask = ...; att.maskedFill(mask, -inf)`), so
 * the kernels computing the mask come after the matmul that should apply it. When they
 * depend on nothing the matmul (or a kernel after it) computes, they run before it instead,
 * and the node joins the matmul's epilogue. The same for an elementwise kernel: a chain of
 * adds over per-parameter norms (clipGradNorm's total) formed where the first norm is ready
 * takes the last norm's add once that norm's reduction moves before it.
 */
import type { Rule } from '../driver.ts';
import { kernelNodes, type Kernel } from '../groups.ts';
import type { FusionState } from '../state.ts';
import { canJoin } from './join.ts';

export const hoist: Rule<number> = {
  name: 'hoist',
  doc: "an elementwise node that could join a matmul's epilogue or an elementwise kernel but for inputs computed by later kernels: those kernels move before it when they do not depend on it, and the node joins",
  apply(st, id) {
    const n = st.node(id);
    if (!st.isElementwise(n)) return null;
    const targets = [...new Set(n.inputs.map((i) => st.kernelOf.get(st.baseOf(i))))]
      .filter((k): k is number => k !== undefined && (st.kernels[k]?.kind === 'matmul' || st.kernels[k]?.kind === 'elementwise'))
      .sort((a, b) => b - a);
    const refused: string[] = [];
    const inPlace = new Set(st.opts.inPlace?.keys() ?? []);
    for (const mi of targets) {
      const kind = st.kernels[mi]!.kind;
      const later = n.inputs.map((i) => st.producer(i)).filter((p) => p > mi);
      if (!later.length || canJoin(st, st.kernels[mi]!, mi, n, true) !== null) continue;
      const order = hoistBefore(
        st.kernels.length,
        mi,
        later,
        (ki) => kernelNodes(st.kernels[ki]!).flatMap((m) => st.node(m).inputs.map((i) => st.producer(i))).filter((p) => p >= 0 && p !== ki),
        (ki) => st.kernels[ki] !== null && !kernelNodes(st.kernels[ki]!).some((m) => inPlace.has(m)),
      );
      if (!order) {
        refused.push(`did not move the producers of ${st.nodeTag(id)}'s inputs before ${kind} kernel ${mi}: they depend on it`);
        continue;
      }
      reorder(st, order);
      const ki = order.indexOf(mi);
      const k = st.kernels[ki] as Extract<Kernel, { kind: 'matmul' | 'elementwise' }>;
      const why = canJoin(st, k, ki, n);
      if (why !== null) throw new Error(`internal compiler error: ${st.nodeTag(id)} cannot join ${kind} kernel ${ki} after hoisting: ${why}`);
      st.pullFloating(n, k, ki);
      if (k.kind === 'elementwise') k.nodes.push(id);
      else k.epilogue.push(id);
      st.kernelOf.set(id, ki);
      st.placed.add(id);
      return { fired: `moved kernels ${later.join(', ')} (computing inputs of ${st.nodeTag(id)}) before ${kind} kernel ${mi}, now ${ki}, and fused ${st.nodeTag(id)} into ${kind === 'matmul' ? 'its epilogue' : 'it'}`, notes: refused };
    }
    return refused.length ? { refused } : null;
  },
};

/** The kernels in a new order (old indices), with kernelOf following them. */
function reorder(st: FusionState, order: number[]): void {
  const old = st.kernels.slice();
  const at = new Map(order.map((o, i) => [o, i] as const));
  order.forEach((o, i) => (st.kernels[i] = old[o]!));
  for (const [id, ki] of st.kernelOf) st.kernelOf.set(id, at.get(ki)!);
}

/**
 * A kernel order (old indices) that runs `wanted`, and every kernel after `target` they
 * depend on, right before `target`; null when one of them depends on `target` or may not move.
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
      if (d > target) stack.push(d);
    }
  }
  const order: number[] = [];
  for (let k = 0; k < target; k++) order.push(k);
  order.push(...[...moved].sort((a, b) => a - b), target);
  for (let k = target + 1; k < count; k++) if (!moved.has(k)) order.push(k);
  return order;
}

