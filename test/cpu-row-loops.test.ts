/**
 * Row kernels on the cpu target keep a pass's costly per-element values (softmax's
 * e^(x - max), summed in one pass and divided in the last) in a row buffer for the element
 * pass instead of computing them twice: which values are kept, and that the results are
 * unchanged (eager, masked rows of -inf, NaN) on the kernel shapes softmax, logSoftmax and
 * crossEntropy give.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { CpuPlan } from '../src/compile/cpu-plan.ts';
import { takeChecks } from '../src/compile/checks.ts';
import { optimize } from '../src/compile/optimize.ts';
import { reusedValues } from '../src/codegen-cpu/row-js.ts';
import type { RowBody } from '../src/passes/kernel-ir.ts';

type T = torch.Tensor;

function rowBodies(fn: (...xs: T[]) => T, xs: T[]): RowBody[] {
  const t = torch.trace(fn, ...xs, { backward: false });
  const plan = new CpuPlan(optimize(takeChecks(t.graph).graph));
  return plan.kernels.map((k) => k.kernel.body).filter((b): b is RowBody => b.kind === 'row');
}

describe('cpu row kernels reuse a pass\'s exp', () => {
  it('softmax keeps e^(x - max) from the sum pass for the element pass; layerNorm keeps nothing', () => {
    const x = torch.randn(6, 10);
    const [soft] = rowBodies((t: T) => t.softmax(-1), [x]);
    const reuse = [...reusedValues(soft).entries()];
    expect(reuse).toHaveLength(1);
    const [[node, [step, j]]] = reuse;
    expect(soft.nodes[node].op).toBe('exp');
    expect((soft.steps[step] as Extract<RowBody['steps'][number], { kind: 'reduce' }>).nodes[j].op).toBe('exp');
    const [ln] = rowBodies((t: T) => torch.nn.functional.layerNorm(t, [10]), [x]);
    expect(reusedValues(ln).size).toBe(0);
  });

  it('softmax and logSoftmax with masked (-inf) rows, NaN and large values equal eager cpu', async () => {
    const v = new Float32Array(8 * 12).map((_, i) => ((i * 37) % 23) - 11);
    for (let j = 0; j < 12; j++) v[2 * 12 + j] = -Infinity; // a fully masked row
    v[5 * 12 + 3] = NaN;
    v[6 * 12 + 1] = 80; // e^80 overflows float32 in eager if not shifted: the max shift keeps it finite
    const x = torch.tensor(v, { shape: [8, 12] });
    const f = (t: T) => torch.stack([t.softmax(-1), t.logSoftmax(-1).exp(), t.mul(0.5).softmax(-1)]);
    const eager = await f(x).toArray();
    const fast = await torch.compile(f)(x).toArray();
    for (let i = 0; i < eager.length; i++) {
      if (Number.isNaN(eager[i])) expect(fast[i], `element ${i}`).toBeNaN();
      else expect(Math.abs(fast[i] - eager[i]), `element ${i}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(eager[i])));
    }
  });
});
