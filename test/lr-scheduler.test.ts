/** torch.optim.lrScheduler: PyTorch 1.13's formulas, and a compiled whole step that follows the lr without recompiling. */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';

const { StepLR, CosineAnnealingLR, LambdaLR } = torch.optim.lrScheduler;

function lrsOver(steps: number, make: (opt: torch.optim.SGD) => { step(): void }, lr = 0.1): number[] {
  const opt = new torch.optim.SGD([torch.zeros(1, { requiresGrad: true })], { lr });
  const s = make(opt);
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    out.push(opt.paramGroups[0].lr);
    s.step();
  }
  return out;
}

describe('lr schedulers', () => {
  it('StepLR multiplies by gamma every stepSize steps (the cnn record: stepSize 5, gamma 0.5)', () => {
    const lrs = lrsOver(16, (o) => new StepLR(o, { stepSize: 5, gamma: 0.5 }), 0.05);
    expect(lrs).toEqual([...Array(5).fill(0.05), ...Array(5).fill(0.025), ...Array(5).fill(0.0125), 0.00625]);
    expect(lrsOver(3, (o) => new StepLR(o, { stepSize: 1 }))[2]).toBeCloseTo(0.001, 15);
  });

  it('CosineAnnealingLR: the recursive form PyTorch steps with (the gpt record: TMax 20, etaMin 3e-4)', () => {
    const base = 3e-3;
    const etaMin = 3e-4;
    const T = 20;
    const lrs = lrsOver(41, (o) => new CosineAnnealingLR(o, { TMax: T, etaMin }), base);
    // PyTorch 1.13 get_lr(), step by step
    const want: number[] = [base];
    for (let e = 1; e < 41; e++) {
      const prev = want[e - 1];
      if ((e - 1 - T) % (2 * T) === 0) want.push(prev + ((base - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
      else want.push(((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (prev - etaMin) + etaMin);
    }
    expect(lrs).toEqual(want);
    // and it follows the closed form to rounding
    lrs.forEach((lr, e) => expect(lr).toBeCloseTo(etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * e) / T))) / 2, 12));
    expect(lrs[20]).toBeCloseTo(etaMin, 12);
  });

  it('LambdaLR: baseLr * lambda(epoch), one lambda or one per group; getLastLr', () => {
    const lrs = lrsOver(4, (o) => new LambdaLR(o, (e) => 0.5 ** e), 0.2);
    expect(lrs).toEqual([0.2, 0.1, 0.05, 0.025]);
    const a = torch.zeros(1, { requiresGrad: true });
    const b = torch.zeros(1, { requiresGrad: true });
    const opt = new torch.optim.SGD([{ params: [a], lr: 1 }, { params: [b], lr: 2 }]);
    const s = new LambdaLR(opt, [(e) => e + 1, (e) => 1 / (e + 1)]);
    s.step();
    expect(s.getLastLr()).toEqual([2, 1]);
    expect(s.stateDict()).toMatchObject({ lastEpoch: 1, baseLrs: [1, 2] });
  });

  it('bad arguments are refused with the fix', () => {
    const opt = new torch.optim.SGD([torch.zeros(1, { requiresGrad: true })], { lr: 0.1 });
    expect(() => new StepLR(opt, { stepSize: 0 })).toThrow(/StepLR: stepSize must be a positive integer, got 0\. Fix/);
    expect(() => new CosineAnnealingLR(opt, { TMax: 10, etamin: 0 } as never)).toThrow(/unknown option 'etamin'/);
    expect(() => new LambdaLR(opt, 3 as never)).toThrow(/LambdaLR: expected a function/);
    expect(() => new StepLR({} as never, { stepSize: 1 })).toThrow(/expected an optimizer/);
  });

  describe.each(testDevices())('a compiled whole step on %s', (device) => {
    it('uses the scheduled lr on its next call without recompiling, equal to eager', async () => {
      const run = async (compiled: boolean) => {
        torch.manualSeed(3);
        const model = new torch.nn.Sequential(new torch.nn.Linear(4, 8), new torch.nn.ReLU(), new torch.nn.Linear(8, 2)).to(device);
        const x = torch.randn(16, 4).to(device);
        const y = torch.randn(16, 2).to(device);
        const opt = new torch.optim.Adam(model.parameters(), { lr: 0.05 });
        const sched = new StepLR(opt, { stepSize: 2, gamma: 0.1 });
        const body = () => {
          const loss = torch.nn.functional.mseLoss(model(x), y);
          opt.zeroGrad();
          loss.backward();
          opt.step();
          return loss;
        };
        const step = compiled ? torch.compile(body) : body;
        const losses: number[] = [];
        for (let t = 0; t < 6; t++) {
          losses.push(await step().item());
          sched.step();
        }
        const params = await Promise.all(model.parameters().map((p) => p.toArray()));
        return { losses, params, cache: compiled ? (step as torch.Compiled<typeof body>).cacheInfo() : null };
      };
      // eager follows the schedule (0.05, 0.005, 0.0005): a compiled step that froze its first lr would drift from it
      const eager = await run(false);
      const fast = await run(true);
      expect(fast.cache).toEqual({ graphs: 1, hits: 5, misses: 1 });
      fast.losses.forEach((l, i) => expect(Math.abs(l - eager.losses[i])).toBeLessThanOrEqual(1e-5 * Math.abs(eager.losses[i])));
      fast.params.forEach((p, i) => p.forEach((v, k) => expect(Math.abs(v - eager.params[i][k])).toBeLessThanOrEqual(1e-5)));
    });
  });
});
