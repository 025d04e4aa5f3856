/**
 * Issue 12: in a whole training step, crossEntropy's mean divides by the count of the targets
 * that count (all of them, or those not equal to ignoreIndex), and the gradient of every row
 * reads 1/count. That count is a reduction of the targets (a graph input) alone, so the row
 * kernel computes it before its rows (RowBody.pre, fusion/row-pretotals.ts), and its
 * `targets.ne(ignoreIndex)` is recomputed where it is read ([recompute-inputs]): crossEntropy's
 * forward and backward are one row kernel, with no count kernel and no `ne` kernel. Values
 * against eager (three steps, parameters after them) and the reference interpreter (the traced
 * step's loss and gradients).
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { expectTensorClose, interpretOutputs, interpreterBinding } from './helpers/compile-util.ts';
import { partsOf, type Kernel } from '../src/passes/kernel-ir.ts';

type Opts = NonNullable<Parameters<typeof torch.nn.functional.crossEntropy>[2]>;
const VARIANTS: { what: string; opts: Opts }[] = [
  { what: 'mean', opts: {} },
  { what: 'mean, ignoreIndex 3 (two targets ignored)', opts: { ignoreIndex: 3 } },
  { what: 'mean, labelSmoothing 0.1', opts: { labelSmoothing: 0.1 } },
  { what: 'mean, ignoreIndex 3 and labelSmoothing 0.2', opts: { ignoreIndex: 3, labelSmoothing: 0.2 } },
];
const [N, D, C] = [16, 12, 9];
// (i * 5) % 9 hits 3 twice in 16 rows
const TARGETS = Int32Array.from({ length: N }, (_, i) => (i * 5) % C);

function make(device: torch.Device) {
  torch.manualSeed(5);
  const model = new torch.nn.Linear(D, C).to(device);
  return { model, opt: new torch.optim.SGD(model.parameters(), { lr: 0.1 }) };
}

describe.each(testDevices())('crossEntropy in a whole step on %s: the count folded into the row kernel', (device) => {
  for (const v of VARIANTS) {
    it(`${v.what}: one row kernel for the loss and its gradient, no count or ne kernel; equal to eager and the interpreter`, async () => {
      torch.manualSeed(4);
      const xHost = torch.randn([N, D]);
      const yHost = torch.tensor(TARGETS, { shape: [N], dtype: 'int32' });
      const stepOf = (m: ReturnType<typeof make>, x: torch.Tensor, y: torch.Tensor) => () => {
        m.opt.zeroGrad();
        const loss = torch.nn.functional.crossEntropy(m.model(x), y, v.opts);
        loss.backward();
        m.opt.step();
        return loss;
      };
      const [x, y] = [xHost.to(device), yHost.to(device)];
      const e = make(device);
      const k = make(device);
      const eager = stepOf(e, x, y);
      const fast = torch.compile(stepOf(k, x, y));

      // the reference interpreter on the traced step (cpu tensors, the same initial parameters)
      const h = make('cpu');
      const traced = torch.trace(stepOf(h, xHost, yHost));
      const outs = await interpretOutputs(traced.program.graph, interpreterBinding(traced.program));
      const roles = traced.program.graph.outputs.map((o) => o.role);
      const refLoss = outs[roles.indexOf('output')]![0]!;
      const refGrads = roles.map((r, i) => (r === 'grad' ? outs[i]! : null)).filter((g): g is Float32Array => g !== null);

      const wants: number[] = [];
      for (let i = 0; i < 3; i++) {
        const want = await eager().item();
        if (i === 0) {
          expect(Math.abs(refLoss - want), `interpreter ${refLoss} vs eager ${want}`).toBeLessThanOrEqual(1e-5 * Math.abs(want));
          // the step's gradients: weight [C, D] and bias [C]
          const gw = await e.model.weight.grad!.toArray();
          const gb = await e.model.bias!.grad!.toArray();
          const byLength = (n: number) => refGrads.find((g) => g.length === n)!;
          await expectTensorClose(torch.tensor(byLength(C * D), { shape: [C, D] }), torch.tensor(gw, { shape: [C, D] }), 1e-5, 'interpreter weight grad');
          await expectTensorClose(torch.tensor(byLength(C), { shape: [C] }), torch.tensor(gb, { shape: [C] }), 1e-5, 'interpreter bias grad');
        }
        const got = await fast().item();
        expect(Math.abs(got - want), `step ${i}: compiled ${got} vs eager ${want}`).toBeLessThanOrEqual(1e-5 * Math.abs(want));
        wants.push(want);
      }
      const w = new Map(e.model.namedParameters());
      for (const [n, p] of k.model.namedParameters()) await expectTensorClose(p, w.get(n)!, 1e-5, `param ${n}`);

      const g = fast.graphs()[0]!;
      const ks = g.kernels.flatMap((ki) => partsOf(ki.kernel));
      const names = ks.map((x) => x.name).join(' ');
      const opOf = new Map(g.irNodes('forward').map((n) => [n.id, n.op]));
      const covers = (kk: Kernel, ops: string[]) => kk.covers.nodes.some((id) => ops.includes(opOf.get(id)!));
      // crossEntropy's kernels: whatever computes its max, exp, log, the count's ne and sum of bools
      const ce = ks.filter((kk) => covers(kk, ['max', 'exp', 'log', 'ne']));
      expect(ce.map((kk) => kk.body.kind), names).toEqual(['row']);
      const body = ce[0]!.body;
      expect(body.kind === 'row' && (body.pre ?? []).some((s) => s.kind === 'reduce'), `${ce[0]!.name}: the count runs before the rows`).toBe(true);
      // the Linear's product, the loss row kernel, the weight gradient with its SGD update (bias's riding on it)
      expect(ks.filter((kk) => kk.body.kind !== 'matmul').map((kk) => kk.name), names).toEqual([ce[0]!.name]);
      expect(ks.length, names).toBeLessThanOrEqual(3);
    }, 300_000);
  }
});
