/**
 * The general matmul-epilogue reduction rule ([operand-reduction], [reduction-epilogue] in
 * src/passes/fusion/rules): a reduction along K of a matmul operand's source, of any value
 * reduction, over the rows of op(A) or the columns of op(B), plain or transposed, runs in the
 * matmul's kernel, and elementwise work on it once per row or column. None of these is a
 * bias gradient; each compiled result equals eager on both devices, with one kernel fewer
 * per fused reduction (and per fused update) than with the rule left out.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';

/** the kernels of a compiled graph, a pack's parts counted one by one */
const kernelsOf = (g: { kernels: { name: string; parts?: string[] }[] }) => g.kernels.flatMap((k) => k.parts ?? [k.name]);

type Case = { name: string; fn: (a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) => torch.Tensor[]; a: number[]; b: number[]; c?: number[]; fires: RegExp; epilogue?: boolean };

const CASES: Case[] = [
  { name: 'a.t().mm(b) with a.sum(0): sums over the rows of op(A) = a^T', fn: (a, b) => [a.t().mm(b), a.sum(0)], a: [19, 13], b: [19, 10], fires: /the sum %\d+ over the rows of op\(A\)/ },
  { name: 'a.t().mm(b) with a.amax(0) and scalar work on it (the reduction epilogue comes along)', fn: (a, b) => [a.t().mm(b), a.amax(0).mul(2).add(1)], a: [19, 13], b: [19, 10], fires: /the max %\d+ over the rows of op\(A\)/ },
  { name: 'a.t().mm(b) with c - 0.1 * a.amax(0): an update reading a tensor, once per row', fn: (a, b, c) => [a.t().mm(b), c.sub(a.amax(0).mul(0.1))], a: [19, 13], b: [19, 10], c: [13], fires: /the max %\d+ over the rows of op\(A\)/, epilogue: true },
  { name: 'a.mm(b) with a.amin(1, keepdim): a plain A, its rows', fn: (a, b) => [a.mm(b), a.amin(1, true)], a: [13, 19], b: [19, 10], fires: /the min %\d+ over the rows of op\(A\)/ },
  { name: 'a.mm(b) with b.sum(0): the columns of a plain B', fn: (a, b, c) => [a.mm(b).relu(), b.sum(0).neg().add(c)], a: [13, 20], b: [20, 12], c: [12], fires: /the sum %\d+ over the columns of op\(B\)/, epilogue: true },
  { name: 'a.mm(b.t()) with b.amax(1): the columns of a transposed B', fn: (a, b) => [a.mm(b.t()), b.amax(1)], a: [13, 20], b: [12, 20], fires: /the max %\d+ over the columns of op\(B\)/ },
  { name: 'a.mm(b) with a 0.5-scaled prologue shared by the matmul and the prod of its rows', fn: (a, b) => { const s = a.mul(0.5).add(1); return [s.mm(b), s.prod(1)]; }, a: [8, 12], b: [12, 16], fires: /the prod %\d+ over the rows of op\(A\)/ },
  { name: 'vec4-aligned shapes (the vec4 variant): a.t().mm(b) with a.sum(0) and b.amax(0)', fn: (a, b) => [a.t().mm(b), a.sum(0), b.amax(0)], a: [32, 16], b: [32, 24], fires: /over the columns of op\(B\)/ },
];

for (const device of testDevices()) {
  describe(`operand reductions in the matmul kernel on ${device}`, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        torch.manualSeed(7);
        const a = torch.randn(c.a).to(device);
        const b = torch.randn(c.b).to(device);
        const x = torch.randn(c.c ?? [1]).to(device);
        const eager = c.fn(a, b, x);
        const fast = torch.compile(c.fn);
        const got = fast(a, b, x);
        const g = fast.graphs()[0]!;
        expect(g.fusionLog.some((l) => /\[operand-reduction\] fused /.test(l) && c.fires.test(l)), g.fusionLog.join('\n')).toBe(true);
        if (c.epilogue) expect(g.fusionLog.some((l) => /\[reduction-epilogue\] fused /.test(l)), g.fusionLog.join('\n')).toBe(true);
        // the matmul's kernel computes every output: one kernel in all
        expect(kernelsOf(g), g.fusionLog.join('\n')).toEqual([expect.stringMatching(/_mm/)]);
        for (let i = 0; i < eager.length; i++) {
          expect(got[i]!.shape).toEqual(eager[i]!.shape);
          const [e, x] = [await eager[i]!.toArray(), await got[i]!.toArray()];
          for (let j = 0; j < e.length; j++) expect(Math.abs(x[j]! - e[j]!), `output ${i}[${j}]: ${x[j]} vs ${e[j]}`).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(e[j]!)));
        }
      });
    }

    it('an argmax over the operand is not a value the matmul holds: it stays a kernel of its own', async () => {
      const a = torch.randn([6, 9]).to(device);
      const b = torch.randn([9, 5]).to(device);
      const f = (x: torch.Tensor, y: torch.Tensor) => [x.mm(y), x.argmax(1)];
      const fast = torch.compile(f);
      const got = fast(a, b);
      expect(kernelsOf(fast.graphs()[0]!).length).toBe(2);
      expect(Array.from(await got[1]!.toArray())).toEqual(Array.from(await a.argmax(1).toArray()));
    });
  });
}
