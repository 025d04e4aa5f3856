/**
 * Value checks as ops: `checkIndex(t, ...)` returns t and fails the call where a value lies
 * outside [lo, hi). Because it is an op, it runs on every device and mode: at once on the cpu
 * and wherever the values are known on the host, on the GPU otherwise (reported, naming the
 * op, at the next readback), and inside compiled graphs (src/compile/checks.ts). Use the
 * returned tensor downstream, so that a compiled graph keeps the check.
 */
import type { IndexCheckAttrs } from '../ir/value-checks.ts';
import { apply } from './dispatch.ts';
import type { Tensor } from './tensor.ts';

export function checkIndex(t: Tensor, c: Omit<IndexCheckAttrs, 'ignore'> & { ignore?: number | null }): Tensor {
  return apply('check_index', [t], { ...c, ignore: c.ignore ?? null });
}
