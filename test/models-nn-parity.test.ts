/**
 * Parity with PyTorch 1.13 (../shared/reference/models.json, see models.md there) for torch.nn
 * beyond the seed: the functional layers of the `ops` section, clip_grad_norm, and the training
 * records of the current tutorial (poly), the CNN and the GPT. On every device, eager and
 * compiled (a compiled function for the ops; a compiled model and a compiled whole step for the
 * models), with models.md's tolerances.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { models, opsIntTensors, opsRecords, opsTensors, weightsLike, type Flat } from './helpers/models-ref.ts';

const F = torch.nn.functional;
type Fn = (t: Record<string, torch.Tensor>, i: Record<string, torch.Tensor>) => torch.Tensor;

/** The functional-layer entries of models.json `ops`, in wgtorch's spelling. */
const LAYER_OPS: Record<string, Fn> = {
  layer_norm: (t) => F.layerNorm(t.A, [4], t.G, t.Bl),
  layer_norm_2d: (t) => F.layerNorm(t.Q, [3, 4]),
  batch_norm_train_1d: (t) => F.batchNorm(t.N2, null, null, { training: true }),
  batch_norm_train_2d: (t) => F.batchNorm(t.N4, null, null, { training: true }),
  conv2d: (t) => F.conv2d(t.X4, t.Wc, t.Bc),
  conv2d_s2p1: (t) => F.conv2d(t.X4, t.Wc, t.Bc, { stride: 2, padding: 1 }),
  max_pool2d: (t) => F.maxPool2d(t.P4, 2),
  max_pool2d_k3s2: (t) => F.maxPool2d(t.P5, 3, { stride: 2 }),
  avg_pool2d: (t) => F.avgPool2d(t.P4, 2),
  embedding: (t, i) => F.embedding(i.X2, t.E),
  one_hot_mm: (t, i) => F.oneHot(i.tgt, 6).float().matmul(t.L.t()),
  cross_entropy: (t, i) => F.crossEntropy(t.L, i.tgt),
  cross_entropy_ignore: (t, i) => F.crossEntropy(t.L, i.tgt_ign, { ignoreIndex: -100 }),
  cross_entropy_smooth: (t, i) => F.crossEntropy(t.L, i.tgt, { labelSmoothing: 0.1 }),
};

const OUT_TOL = 2e-6;
const GRAD_TOL = 2e-5;

function expectFlat(got: ArrayLike<number>, want: Flat, tol: number, what: string) {
  expect(got.length, what).toBe(want.values.length);
  const scale = Math.max(1, ...want.values.map(Math.abs));
  let worst = 0;
  let at = -1;
  for (let k = 0; k < got.length; k++) {
    const d = Math.abs(got[k] - want.values[k]);
    if (!(d <= worst)) [worst, at] = [d, k];
  }
  expect(worst, `${what}: worst element ${at}: ${got[at]} vs ${want.values[at]}`).toBeLessThanOrEqual(tol * scale);
}

function opInputs(device: torch.Device, names: string[]) {
  const t: Record<string, torch.Tensor> = {};
  for (const [n, f] of Object.entries(opsTensors)) {
    t[n] = torch.tensor(Float32Array.from(f.values), { shape: f.shape, device, requiresGrad: names.includes(n) });
  }
  const i: Record<string, torch.Tensor> = {};
  for (const [n, f] of Object.entries(opsIntTensors)) i[n] = torch.tensor(Int32Array.from(f.values), { shape: f.shape, dtype: 'int32', device });
  return { t, i };
}

describe.each(testDevices())('models.json on %s', (device) => {
  describe.each(['eager', 'compiled'] as const)('functional layers, %s', (mode) => {
    const recs = opsRecords.filter((r) => r.name in LAYER_OPS);
    it('covers every functional-layer entry it names', () => {
      expect(recs.map((r) => r.name).sort()).toEqual(Object.keys(LAYER_OPS).sort());
    });
    it.each(recs.map((r) => [r.name, r] as const))('%s: output and weighted gradients', async (_n, rec) => {
      const { t, i } = opInputs(device, rec.inputs);
      const fn = LAYER_OPS[rec.name];
      const leaves = rec.inputs.map((n) => t[n]);
      const run = (...xs: torch.Tensor[]) => fn({ ...t, ...Object.fromEntries(rec.inputs.map((n, k) => [n, xs[k]])) }, i);
      const out = mode === 'eager' ? run(...leaves) : torch.compile(run)(...leaves);
      expect(out.shape).toEqual(rec.out.shape);
      expectFlat(await out.toArray(), rec.out, OUT_TOL, `${rec.name} out`);
      const W = torch.tensor(weightsLike(out.numel()), { shape: out.shape, device });
      out.mul(W).sum().backward();
      for (const n of rec.inputs) {
        const want = rec.grad_weighted[n];
        if (!want) continue;
        expect(t[n].grad, `${rec.name} d/d${n}`).not.toBeNull();
        expectFlat(await t[n].grad!.toArray(), want, GRAD_TOL, `${rec.name} d/d${n}`);
      }
    });
  });

  it.each(['eager', 'compiled'] as const)('clip_grad_norm: the total norm and the clipped gradients (%s)', async (mode) => {
    const c = models.clip_grad_norm;
    const a = torch.zeros(c.grads.a.shape, { device, requiresGrad: true });
    const b = torch.zeros(c.grads.b.shape, { device, requiresGrad: true });
    a.grad = torch.tensor(Float32Array.from(c.grads.a.values), { shape: c.grads.a.shape, device });
    b.grad = torch.tensor(Float32Array.from(c.grads.b.values), { shape: c.grads.b.shape, device });
    const clip = () => torch.nn.utils.clipGradNorm_([a, b], c.max_norm);
    const total = mode === 'eager' ? clip() : torch.compile(clip)();
    expect(total.shape).toEqual([]);
    expect(Math.abs((await total.item()) - c.total_norm)).toBeLessThanOrEqual(2e-6 * c.total_norm);
    expectFlat(await a.grad!.toArray(), { shape: c.grads.a.shape, values: c.clipped.a }, 2e-6, 'clipped a');
    expectFlat(await b.grad!.toArray(), { shape: c.grads.b.shape, values: c.clipped.b }, 2e-6, 'clipped b');
  });
});
