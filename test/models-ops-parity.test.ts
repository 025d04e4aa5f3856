/**
 * Parity with PyTorch for the tensor ops of ../shared/reference/models.json (`ops`): each
 * entry's output and grad_weighted (d sum(W * out) / d input, W from models.md) on cpu and
 * webgpu, eager and compiled (torch.compile of the expression, its backward through the
 * compiled graph). The entries that need torch.nn.functional layers (layer_norm,
 * batch_norm, conv2d, pools, cross_entropy*, one_hot_mm) are the nn parity's; F.gelu,
 * F.silu and F.embedding run here as the tensor methods they are one-liners over.
 *
 * Tolerance (models.md): within ~1e-6 of the tensor's scale (other summation orders and
 * float32 transcendentals), 1e-5 for softmax / attention gradients.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import type { Device } from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';
import { opsIntTensors, opsRecords, opsTensors, weightsLike, type ModelsOpRec } from './helpers/models-ref.ts';

type T = torch.Tensor;
const sl = torch.slice;

/** models.json entry name -> the wgtorch expression, over the named inputs. */
const EXPRS: Record<string, (I: (name: string) => T, ...xs: T[]) => T> = {
  sin: (_I, A) => A.sin(),
  cos: (_I, A) => A.cos(),
  pow_tensor: (_I, A, P) => A.abs().add(0.5).pow(P),
  gelu: (_I, A) => A.gelu(),
  gelu_tanh: (_I, A) => A.gelu({ approximate: 'tanh' }),
  silu: (_I, A) => A.silu(),
  var_dim1: (_I, A) => A.var(1),
  std_dim0_keepdim: (_I, A) => A.std(0, { keepdim: true }),
  var_all_correction0: (_I, A) => A.var({ correction: 0 }),
  cat_dim0: (_I, A, A2) => torch.cat([A, A2], 0),
  cat_dim1: (_I, A, A2) => torch.cat([A, A2], 1),
  stack_dim1: (_I, A, A2) => torch.stack([A, A2], 1),
  split_cat: (_I, A) => torch.cat(A.split(3, 1).reverse(), 1),
  chunk_mul: (_I, M) => {
    const [a, b] = M.chunk(2, 0);
    return a.mul(b.index(sl(null, 2)));
  },
  narrow: (_I, A) => A.narrow(1, 1, 2),
  select: (_I, A) => A.select(0, -1),
  index_slice: (_I, A) => A.index(null, sl(1, 3)),
  index_step: (_I, M) => M.index(sl(null, null, 2), -1),
  index_select: (I, A) => A.indexSelect(0, I('idx3')),
  gather: (I, A) => A.gather(1, I('gidx')),
  index_tensor: (I, E) => E.index(I('X2')),
  embedding: (I, E) => E.index(I('X2')),
  tril: (_I, M) => torch.tril(M),
  triu_1: (_I, M) => torch.triu(M, 1),
  matmul_3d: (_I, Q, Kt) => Q.matmul(Kt.transpose(-2, -1)),
  matmul_bcast: (_I, Q, M) => Q.matmul(M),
  bmm: (_I, Q, Kt) => torch.bmm(Q, Kt.transpose(1, 2)),
  softmax_3d: (_I, V) => V.softmax(-1),
  causal_softmax: (_I, Q, Kt) => Q.matmul(Kt.transpose(-2, -1)).mul(0.5).maskedFill(torch.tril(torch.ones(3, 3, { device: Q.device })).eq(0), -Infinity).softmax(-1),
  attention: (_I, q, k, v) =>
    q.matmul(k.transpose(-2, -1)).div(Math.sqrt(3)).maskedFill(torch.tril(torch.ones(4, 4, { device: q.device })).eq(0), -Infinity).softmax(-1).matmul(v),
  argmax_dim1: (I) => I('L').argmax(1),
  linspace: (I) => torch.linspace(-Math.PI, Math.PI, 7, { device: I('L').device }),
  eye: (I) => torch.eye(3, 4, { device: I('L').device }),
};
/** Left to the nn parity test (they need torch.nn.functional layers). */
const NN_ENTRIES = ['layer_norm', 'layer_norm_2d', 'batch_norm_train_1d', 'batch_norm_train_2d', 'conv2d', 'conv2d_s2p1', 'max_pool2d', 'max_pool2d_k3s2', 'avg_pool2d', 'cross_entropy', 'cross_entropy_ignore', 'cross_entropy_smooth', 'one_hot_mm'];
const LOOSE_GRAD = new Set(['softmax_3d', 'causal_softmax', 'attention']);

function close(got: ArrayLike<number>, want: readonly number[], rtol: number): { ok: boolean; detail: string } {
  let scale = 0;
  for (const v of want) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    const g = got[i];
    if (!Number.isFinite(w)) {
      if (!Object.is(g, w) && !(Number.isNaN(w) && Number.isNaN(g))) return { ok: false, detail: `index ${i}: got ${g}, expected ${w}` };
      continue;
    }
    const r = Math.abs(g - w) / (rtol * Math.max(Math.abs(w), scale, 1e-30));
    if (!(r <= worst)) {
      worst = Number.isNaN(r) ? Infinity : r;
      at = i;
    }
  }
  return { ok: worst <= 1 && got.length === want.length, detail: `worst at ${at}: got ${got[at]}, expected ${want[at]} (${worst.toFixed(2)}x the tolerance); lengths ${got.length}/${want.length}` };
}

async function runEntry(rec: ModelsOpRec, device: Device, compiled: boolean) {
  const ints = (name: string) => {
    const r = opsIntTensors[name];
    return torch.tensor(Int32Array.from(r.values), { shape: r.shape, device });
  };
  const floats = (name: string) => torch.tensor(Float32Array.from(opsTensors[name].values), { shape: opsTensors[name].shape, device });
  const I = (name: string) => (name in opsIntTensors ? ints(name) : floats(name));
  const xs = rec.inputs.map((n) => floats(n).requiresGrad_());
  const expr = EXPRS[rec.name];
  const fn = (...a: T[]) => expr(I, ...a);
  const run = compiled ? torch.compile(fn) : fn;
  const out = run(...xs);
  expect(out.shape, `${rec.name}: shape`).toEqual(rec.out.shape);
  expect(out.dtype, `${rec.name}: dtype`).toBe(rec.out.dtype === 'int64' ? 'int32' : rec.out.dtype);
  const c = close(await out.toArray(), rec.out.values, 1e-6);
  expect(c.ok, `${rec.name} output on ${device}${compiled ? ' compiled' : ''}: ${c.detail}`).toBe(true);
  if (!xs.length || out.dtype !== 'float32') return;
  const W = torch.tensor(weightsLike(out.numel()), { shape: out.shape, device });
  out.mul(W).sum().backward();
  rec.inputs.forEach((n, k) => {
    const want = rec.grad_weighted[n];
    if (!want) expect(xs[k].grad, `${rec.name}: no gradient for ${n}`).toBeNull();
  });
  for (const [k, n] of rec.inputs.entries()) {
    const want = rec.grad_weighted[n];
    if (!want) continue;
    const g = xs[k].grad;
    expect(g, `${rec.name}: gradient of ${n}`).not.toBeNull();
    expect(g!.shape).toEqual(want.shape);
    const cg = close(await g!.toArray(), want.values, LOOSE_GRAD.has(rec.name) ? 1e-5 : 1e-6);
    expect(cg.ok, `${rec.name} grad of ${n} on ${device}${compiled ? ' compiled' : ''}: ${cg.detail}`).toBe(true);
  }
}

describe('models.json ops parity', () => {
  it('every ops entry is covered here or by the nn parity', () => {
    const names = opsRecords.map((r) => r.name);
    expect(names.filter((n) => !EXPRS[n] && !NN_ENTRIES.includes(n))).toEqual([]);
    expect(Object.keys(EXPRS).filter((n) => !names.includes(n))).toEqual([]);
  });
  for (const device of testDevices()) {
    for (const compiled of [false, true]) {
      describe(`${device}${compiled ? ', compiled' : ', eager'}`, () => {
        for (const rec of opsRecords.filter((r) => EXPRS[r.name])) {
          it(`${rec.name}: ${rec.expr}`, () => runEntry(rec, device, compiled));
        }
      });
    }
  }
});
