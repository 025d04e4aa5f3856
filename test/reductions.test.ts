/**
 * Reductions as one generic op (src/ir/reductions.ts): every reduction the registry has is
 * declared with its combine and identity, and the eager cpu runtime, the WGSL reduce
 * renderer (eager webgpu and compiled) and the cpu target's JS all read that declaration.
 * min, prod and argmin (new rows of the table) against hand values, on both devices, eager
 * and compiled (fused with a prologue and an epilogue), and prod's gradient against finite
 * differences (zeros included).
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { allOps } from '../src/ir/registry.ts';
import { REDUCTIONS } from '../src/ir/reductions.ts';
import { gradcheck, worstRatio } from './helpers/gradcheck.ts';
import { testDevices } from './helpers/devices.ts';

const X = [1, -2, 3, 0.5, 4, -1, 2, 2, -3, 0.25, -0.5, 8];
const NAN_X = [1, NaN, 3, -1, 2, 2];

const host = async (t: torch.Tensor) => Array.from(await t.toArray());

describe('the reduction table', () => {
  it('declares every reduction of the registry, and nothing else', () => {
    const reduceOps = allOps().filter((o) => o.kind === 'reduce').map((o) => o.name).sort();
    expect(reduceOps).toEqual(Object.keys(REDUCTIONS).sort());
  });
});

for (const device of testDevices()) {
  describe(`reductions on ${device}`, () => {
    const x = () => torch.tensor(X, { shape: [3, 4], device });

    it('eager prod, amin, argmin, argmax: hand values, ties take the first index', async () => {
      // rows [1, -2, 3, 0.5], [4, -1, 2, 2], [-3, 0.25, -0.5, 8]
      expect(await host(x().prod(1))).toEqual([-3, -16, 3]);
      expect(await host(x().prod())).toEqual([144]);
      expect(await host(x().amin(0))).toEqual([-3, -2, -0.5, 0.5]);
      expect(await host(x().amin(1, true))).toEqual([-2, -1, -3]);
      expect(x().amin(1, true).shape).toEqual([3, 1]);
      expect(await host(x().argmin(1))).toEqual([1, 1, 0]);
      expect(await host(x().argmax(0))).toEqual([1, 2, 0, 2]);
      expect(await host(torch.tensor([2, 5, 5, 1], { device }).argmax())).toEqual([1]);
      expect(await host(torch.tensor([2, 1, 5, 1], { device }).argmin())).toEqual([1]);
      expect(x().amin(0).dtype).toBe('float32');
      expect(x().argmin(1).dtype).toBe('int32');
    });

    it('NaN wins a min and an argmin, as in PyTorch; prod over an empty dim is its identity, min over one is an error', async () => {
      const n = torch.tensor(NAN_X, { shape: [2, 3], device });
      const m = await host(n.amin(1));
      expect(Number.isNaN(m[0])).toBe(true);
      expect(m[1]).toBe(-1);
      expect(await host(n.argmin(1))).toEqual([1, 0]);
      expect(await host(torch.zeros([2, 0], { device }).prod(1))).toEqual([1, 1]);
      expect(() => torch.zeros([2, 0], { device }).amin(1)).toThrow(/min: expected reduction dim 1 to have non-zero size \(input shape \[2, 0\]\)/);
    });

    it('compiled (fused prologues and epilogues) equals eager and the hand values', async () => {
      const f = (a: torch.Tensor) => [a.sub(0.5).abs().prod(1), a.mul(2).amin(0), a.argmin(1), a.amin(1).add(1), a.prod(0).mul(3), a.argmax(1)];
      const eager = f(x());
      const fast = torch.compile(f);
      const compiled = fast(x());
      // the prologues ride in the reductions (recomputed per reduced element), and mul(3) / add(1) in their epilogues
      const log = fast.graphs()[0]!.fusionLog;
      expect(log.some((l) => /\[recompute-prologue\] recomputed kernel \d+ \(%\d+ sub, %\d+ abs\) as a prologue of kernel \d+ reduce/.test(l)), log.join('\n')).toBe(true);
      expect(log.some((l) => /\[join\] fused %\d+ mul into kernel \d+ \(reduce epilogue\)/.test(l)), log.join('\n')).toBe(true);
      const want = [
        [0, 3.5 * 1.5 * 1.5 * 1.5, 3.5 * 0.25 * 1 * 7.5],
        [-6, -4, -1, 1],
        [1, 1, 0],
        [-1, 0, -2],
        [-36, 1.5, -9, 24],
        [2, 0, 3],
      ];
      for (let i = 0; i < want.length; i++) {
        const [e, c] = [await host(eager[i]!), await host(compiled[i]!)];
        expect(e, `eager output ${i}`).toEqual(want[i]);
        expect(c, `compiled output ${i}`).toEqual(e);
        expect(compiled[i]!.dtype).toBe(eager[i]!.dtype);
      }
    });
  });
}

describe('reduction gradients (cpu, finite differences)', () => {
  const leaf = (v: number[], shape: number[]) => torch.tensor(v, { shape, requiresGrad: true });
  it('prod: no zeros, one zero in a row, two zeros in a row', () => {
    for (const v of [[1.5, -0.7, 2, 0.9, 1.1, -1.3], [1.5, 0, 2, 0.9, 1.1, -1.3], [0, 0, 2, 0.9, 0, -1.3]]) {
      for (const f of [(a: torch.Tensor) => a.prod(1), (a: torch.Tensor) => a.prod(), (a: torch.Tensor) => a.prod(0, true)]) {
        const r = gradcheck(f, [leaf(v, [2, 3])]);
        expect(worstRatio(r, 1e-3, 1e-3), `${v}`).toBeLessThanOrEqual(1);
      }
    }
  });
  it('amin: the gradient goes to the minimum (ties share it)', () => {
    const r = gradcheck((a) => a.amin(1), [leaf([1.5, -0.7, 2, 0.9, 1.1, -1.3], [2, 3])]);
    expect(worstRatio(r, 1e-3, 1e-3)).toBeLessThanOrEqual(1);
    const a = leaf([1, -2, -2, 3], [4]);
    a.amin().backward();
    expect(Array.from(a.grad!.toArraySync())).toEqual([0, 0.5, 0.5, 0]);
  });
});
