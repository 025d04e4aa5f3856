/** Parity with real PyTorch (../shared/reference/golden.json): training runs a-f and the single-op checks of g. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { TRAIN_RECORDS, golden, input, statOf, toOurName, trainRecord, type OpRec, type Stat } from './helpers/golden.ts';

const LOSS_RTOL = 2e-5;
const SUM_TOL = 2e-4;
const OP_TOL = 1e-4;

function expectLosses(got: number[], want: number[]) {
  expect(got.length).toBe(want.length);
  got.forEach((v, i) => expect(Math.abs(v - want[i]), `loss ${i}: ${v} vs ${want[i]}`).toBeLessThanOrEqual(LOSS_RTOL * Math.abs(want[i])));
}
async function expectStat(t: torch.Tensor, want: Stat, what: string) {
  expect(t.shape, what).toEqual(want.shape);
  const s = await statOf(t);
  expect(Math.abs(s.sum - want.sum), `${what} sum ${s.sum} vs ${want.sum}`).toBeLessThanOrEqual(SUM_TOL * want.abs_sum);
  expect(Math.abs(s.abs_sum - want.abs_sum), `${what} abs_sum`).toBeLessThanOrEqual(SUM_TOL * want.abs_sum);
}

describe.each(testDevices())('golden parity on %s', (device) => {
  it('a: autograd two-layer net with a manual update', async () => {
    const a = golden.a;
    const x = input('x', device);
    const y = input('y', device);
    const w1 = input('w1', device, { requiresGrad: true });
    const w2 = input('w2', device, { requiresGrad: true });
    const losses: number[] = [];
    for (let t = 0; t < a.steps; t++) {
      const yPred = x.mm(w1).clamp({ min: 0 }).mm(w2);
      const loss = yPred.sub(y).pow(2).sum();
      losses.push(await loss.item());
      loss.backward();
      if (t === 0) {
        await expectStat(w1.grad!, a.grad_step0.w1, 'w1.grad step 0');
        await expectStat(w2.grad!, a.grad_step0.w2, 'w2.grad step 0');
      }
      w1.data.sub_(w1.grad!.mul(a.lr));
      w2.data.sub_(w2.grad!.mul(a.lr));
      w1.grad!.zero_();
      w2.grad!.zero_();
    }
    expectLosses(losses, a.losses);
    const after = await torch.noGrad(() => x.mm(w1).clamp({ min: 0 }).mm(w2).sub(y).pow(2).sum()).item();
    expectLosses([after], [a.loss_after_steps]);
    await expectStat(w1, a.final_params.w1, 'w1 final');
    await expectStat(w2, a.final_params.w2, 'w2 final');
  });

  const records = TRAIN_RECORDS;
  it.each(records)('%s', async (_name, rec, dynamic) => {
    const r = await trainRecord(rec, device, { dynamic });
    expectLosses(r.losses, rec.losses);
    if (rec.loss_after_steps !== undefined) expectLosses([r.lossAfter!], [rec.loss_after_steps]);
    for (const [name, stat] of Object.entries(rec.grad_step0)) {
      const g = r.grad0[toOurName(name)];
      if (stat === null) expect(g, `${name} grad at step 0 is None in PyTorch`).toBeNull();
      else await expectStat(g!, stat, `${name} grad step 0`);
    }
    for (const [name, stat] of Object.entries(rec.final_params)) await expectStat(r.params[toOurName(name)], stat, `${name} final`);
  });

  describe('g: single ops, forward and both gradients', () => {
    const T = golden.g.tensors as Record<string, { shape: number[]; values: number[] }>;
    const target = golden.g.cross_entropy_target as number[];
    const F = torch.nn.functional;
    const fns: Record<string, (t: Record<string, torch.Tensor>) => torch.Tensor> = {
      mm: (t) => t.A.mm(t.B),
      clamp_min0: (t) => t.A.clamp({ min: 0 }),
      pow2: (t) => t.A.pow(2),
      pow3: (t) => t.A.pow(3),
      sum: (t) => t.A.sum(),
      mean: (t) => t.A.mean(),
      t: (t) => t.A.t(),
      sub: (t) => t.A.sub(t.A2),
      mul: (t) => t.A.mul(t.A2),
      add: (t) => t.A.add(t.A2),
      add_broadcast: (t) => t.B.add(t.v),
      linear: (t) => t.A.mm(t.B).add(t.v),
      exp: (t) => t.A.exp(),
      log_abs_plus1: (t) => t.A.abs().add(1).log(),
      tanh: (t) => t.A.tanh(),
      sigmoid: (t) => t.A.sigmoid(),
      softmax_dim1: (t) => t.A.softmax(1),
      logsumexp_dim1: (t) => t.A.logsumexp(1),
      max_dim1_values: (t) => t.A.max(1).values,
      cross_entropy: (t) => F.crossEntropy(t.A, torch.tensor(target, { dtype: 'int32', device })),
      mse_sum: (t) => F.mseLoss(t.A, t.A2, { reduction: 'sum' }),
      mse_mean: (t) => F.mseLoss(t.A, t.A2, { reduction: 'mean' }),
      relu: (t) => torch.relu(t.A),
      clamp_min0_at_zero: (t) => t.Z.clamp({ min: 0 }),
      relu_at_zero: (t) => torch.relu(t.Z),
    };
    it('covers every op of the reference', () => {
      expect(Object.keys(fns).sort()).toEqual((golden.g.ops as OpRec[]).map((o) => o.name).sort());
    });
    it.each((golden.g.ops as OpRec[]).map((o) => [o.name, o] as const))('%s', async (_n, op) => {
      const close = async (got: torch.Tensor, want: { shape: number[]; values: number[] }, what: string) => {
        expect(got.shape, what).toEqual(want.shape);
        const a = await got.toArray();
        want.values.forEach((v, i) => expect(Math.abs(a[i] - v), `${what}[${i}]: ${a[i]} vs ${v}`).toBeLessThanOrEqual(OP_TOL));
      };
      for (const mode of ['sum', 'weighted'] as const) {
        const leaves = Object.fromEntries(
          op.inputs.map((k) => [k, torch.tensor(T[k].values, { shape: T[k].shape, device, requiresGrad: true })]),
        );
        const out = fns[op.name](leaves);
        let scalar: torch.Tensor;
        if (mode === 'sum') {
          await close(out, op.out, `${op.name} out`);
          if (op.out.indices) expect(Array.from(await leaves.A.max(1).indices.toArray())).toEqual(op.out.indices);
          scalar = out.sum();
        } else {
          scalar = out.mul(torch.tensor(op.weights.values, { shape: op.weights.shape, device })).sum();
        }
        scalar.backward();
        const want = mode === 'sum' ? op.grad_sum : op.grad_weighted;
        for (const k of op.inputs) await close(leaves[k].grad!, want[k], `${op.name} grad_${mode}[${k}]`);
      }
    });
  });
});
