/**
 * Row kernels (issue 12): softmax, logSoftmax, layerNorm and crossEntropy compile to one row
 * kernel forward (the reductions over the last dim and the work that reads them back, in one
 * kernel) and at most two kernels backward, on cpu and webgpu, equal to eager (and to PyTorch
 * where models.json has the value): rows shorter and longer than a workgroup (64), lengths
 * that are not powers of two, -inf entries of masked attention rows, NaN as eager.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { boundBuffers, partsOf, printKernel, type Kernel, type RowBody } from '../src/passes/kernel-ir.ts';
import { deviceError, expectTensorClose, interpretOutputs, interpreterBinding, relDiff, runGpuPlan } from './helpers/compile-util.ts';
import { testDevices, webgpuAvailable } from './helpers/devices.ts';
import { opsIntTensors, opsRecords, opsTensors, weightsLike } from './helpers/models-ref.ts';

type T = torch.Tensor;
type Inspectable = { graphs(): torch.CompiledGraph[] };

/** the fused kernels of one part of the (only) cached graph, packs opened */
function kernelsOf(fn: Inspectable, part: 'forward' | 'backward'): Kernel[] {
  const gs = fn.graphs();
  expect(gs.length).toBe(1);
  return gs[0].kernels.filter((k) => k.part === part).flatMap((k) => partsOf(k.kernel));
}
const rowKernels = (ks: Kernel[]) => ks.filter((k) => k.body.kind === 'row');
const count = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
/** [value, elements] of each value a kernel writes, from its body (writes follow its outputs in order) */
function writtenSizes(k: Kernel): [number, number][] {
  const b = k.body;
  const sizes: number[] =
    b.kind === 'elementwise' ? b.outputs.map(() => count(b.shape))
    : b.kind === 'reduce' ? b.outputs.map(() => count(b.kept))
    : b.kind === 'row' ? b.outputs.map((o) => (o.per === 'element' ? count(b.kept) * count(b.reduced) : o.per === 'row' ? count(b.kept) : 1))
    : b.kind === 'matmul' ? [...b.outputs.map(() => b.batch.count * b.M * b.N), ...b.reductions.flatMap((r) => r.outputs.map(() => (r.operand === 'A' ? b.M : b.N)))]
    : b.kind === 'index' ? [count(b.shape)]
    : [];
  const written = k.bindings.filter((x) => x.access === 'write');
  expect(written.length, `${k.name}: one write binding per output`).toBe(sizes.length);
  return written.map((x, i) => [x.value, sizes[i]!]);
}

/** deterministic values with a spread that exercises exp (no two rows alike) */
function values(shape: number[], seed: number): Float32Array {
  const n = shape.reduce((p, d) => p * d, 1);
  return Float32Array.from({ length: n }, (_, i) => 3 * Math.sin(0.37 * (i + 1) * (1 + 0.1 * seed) + seed));
}

interface Case {
  name: string;
  fn: (x: T, w: T, b: T) => T;
  /** fused kernels backward at most (layerNorm: dx, and dweight with dbias) */
  backward: number;
  affine?: boolean;
}

const lastDim = (x: T) => x.shape[x.dim() - 1];
const CASES: Case[] = [
  { name: 'softmax', fn: (x) => x.softmax(-1), backward: 1 },
  { name: 'logSoftmax', fn: (x) => x.logSoftmax(-1), backward: 1 },
  { name: 'layerNorm', fn: (x, w, b) => torch.nn.functional.layerNorm(x, [lastDim(x)], w, b), backward: 2, affine: true },
  { name: 'layerNorm without affine', fn: (x) => torch.nn.functional.layerNorm(x, [lastDim(x)]), backward: 1 },
  {
    // written by hand, as a user would: the rule matches the pattern, not the op's name
    name: 'a softmax written by hand',
    fn: (x) => {
      const e = x.sub(x.amax(-1, true).detach()).exp();
      return e.div(e.sum(-1, true));
    },
    backward: 1,
  },
];
/** shorter and longer than a workgroup, powers of two and not, 2-D and 3-D */
const SHAPES = [[5, 7], [4, 64], [3, 300], [2, 3, 130]];

describe.each(testDevices())('row kernels on %s', (device) => {
  for (const c of CASES) {
    it(`${c.name}: one row kernel forward, at most ${c.backward} backward; equal to eager (rows of 7, 64, 300, 130)`, async () => {
      for (const shape of SHAPES) {
        const C = shape[shape.length - 1];
        const make = () => {
          const x = torch.tensor(values(shape, 1), { shape, device, requiresGrad: true });
          const w = torch.tensor(values([C], 2).map((v) => 1 + 0.1 * v), { shape: [C], device, requiresGrad: true });
          const b = torch.tensor(values([C], 3).map((v) => 0.1 * v), { shape: [C], device, requiresGrad: true });
          return { x, w, b };
        };
        const W = torch.tensor(weightsLike(shape.reduce((p, d) => p * d, 1)), { shape, device });
        const e = make();
        const ye = c.fn(e.x, e.w, e.b);
        ye.mul(W).sum().backward();
        const k = make();
        const fast = torch.compile(c.fn);
        const yk = fast(k.x, k.w, k.b);
        yk.backward(W);
        const what = `${c.name} [${shape}] on ${device}`;
        await expectTensorClose(yk, ye, 1e-5, `${what}: output`);
        await expectTensorClose(k.x.grad, e.x.grad, 1e-5, `${what}: grad x`);
        if (c.affine) {
          await expectTensorClose(k.w.grad, e.w.grad, 1e-5, `${what}: grad weight`);
          await expectTensorClose(k.b.grad, e.b.grad, 1e-5, `${what}: grad bias`);
        }
        const fwd = kernelsOf(fast, 'forward');
        const bwd = kernelsOf(fast, 'backward');
        expect(fwd.map((x) => x.name), `${what}: forward kernels`).toHaveLength(1);
        expect(rowKernels(fwd), `${what}: forward is a row kernel`).toHaveLength(1);
        expect(bwd.length, `${what}: backward kernels ${bwd.map((x) => x.name)}`).toBeLessThanOrEqual(c.backward);
        expect(rowKernels(bwd), `${what}: backward row kernels`).toHaveLength(bwd.length);
      }
    }, 300_000);
  }

  it('crossEntropy forward is ONE kernel (the rows, their mean or sum over the rows, the count of the targets that count) in every variant; backward at most two; equal to eager', async () => {
    type Variant = { what: string; opts: NonNullable<Parameters<typeof torch.nn.functional.crossEntropy>[2]>; probs?: boolean; ignore?: number };
    const variants: Variant[] = [
      { what: 'mean', opts: {} },
      { what: 'sum', opts: { reduction: 'sum' } },
      { what: 'none', opts: { reduction: 'none' } },
      { what: 'ignoreIndex', opts: { ignoreIndex: 3 }, ignore: 3 },
      { what: 'ignoreIndex, sum', opts: { ignoreIndex: 3, reduction: 'sum' }, ignore: 3 },
      { what: 'labelSmoothing', opts: { labelSmoothing: 0.1 } },
      { what: 'labelSmoothing, ignoreIndex', opts: { labelSmoothing: 0.2, ignoreIndex: 3 }, ignore: 3 },
      { what: 'class probabilities', opts: {}, probs: true },
      { what: 'class probabilities, labelSmoothing, sum', opts: { labelSmoothing: 0.1, reduction: 'sum' }, probs: true },
    ];
    // rows fewer and more than a workgroup (each invocation of the one workgroup walks several), rows longer than one
    for (const [N, C] of [[6, 11], [150, 7], [4, 300]]) {
      for (const v of variants) {
        const ids = Int32Array.from({ length: N }, (_, i) => (v.ignore !== undefined && i % 4 === 1 ? v.ignore : (i * 5) % C));
        const tgt = v.probs
          ? torch.tensor(values([N, C], 9), { shape: [N, C], device }).softmax(-1)
          : torch.tensor(ids, { shape: [N], device });
        const fn = (x: T) => torch.nn.functional.crossEntropy(x, tgt, v.opts);
        const xe = torch.tensor(values([N, C], 4), { shape: [N, C], device, requiresGrad: true });
        const xk = torch.tensor(values([N, C], 4), { shape: [N, C], device, requiresGrad: true });
        const le = fn(xe);
        const gw = torch.tensor(weightsLike(le.numel()), { shape: le.shape, device });
        le.mul(gw).sum().backward();
        const fast = torch.compile(fn);
        const lk = fast(xk);
        lk.mul(gw).sum().backward();
        const what = `crossEntropy [${N}, ${C}] ${v.what} on ${device}`;
        await expectTensorClose(lk, le, 1e-6, `${what}: loss`);
        await expectTensorClose(xk.grad, xe.grad, 1e-5, `${what}: grad`);
        const fwd = kernelsOf(fast, 'forward');
        const bwd = kernelsOf(fast, 'backward');
        expect(fwd.map((k) => k.name), `${what}: forward kernels`).toHaveLength(1);
        const body = fwd[0].body as RowBody;
        expect(body.kind, `${what}: the forward kernel is a row kernel`).toBe('row');
        // a reduced loss is the row kernel's total over its rows: no [N] losses between two kernels
        expect((body.total ?? []).filter((t) => t.kind === 'reduce').length, `${what}: reductions over the rows inside the kernel`).toBe(
          // the mean over class indices divides by the count of the targets that count: a second total
          v.opts.reduction === 'none' ? 0 : !v.probs && v.opts.reduction !== 'sum' ? 2 : 1,
        );
        expect(bwd.length, `${what}: backward kernels ${bwd.map((k) => k.name)}`).toBeLessThanOrEqual(2);
      }
    }
  }, 600_000);

  it('crossEntropy with every target ignored: the mean is NaN (0/0) as eager and PyTorch, compiled in one kernel', async () => {
    const tgt = torch.tensor(Int32Array.from([-100, -100, -100]), { shape: [3], device });
    const fn = (x: T) => torch.nn.functional.crossEntropy(x, tgt);
    const x = torch.tensor(values([3, 5], 2), { shape: [3, 5], device });
    const fast = torch.compile(fn);
    expect(await fn(x).item()).toBeNaN();
    expect(await fast(x).item()).toBeNaN();
    expect(kernelsOf(fast, 'forward')).toHaveLength(1);
  }, 300_000);

  it('masked attention: the softmax over [B, heads, T, T] scores is one row kernel; -inf entries and a fully masked row (NaN) as eager', async () => {
    const [B, H, T] = [2, 3, 9];
    const fn = (s: T, mask: T) => s.maskedFill(mask, -Infinity).softmax(-1);
    // causal (key j > query i masked), and the last query sees nothing: its row is all -inf,
    // and softmax gives NaN there, as PyTorch
    const maskVals = Float32Array.from({ length: T * T }, (_, i) => (i % T > Math.floor(i / T) || i >= (T - 1) * T ? 1 : 0));
    const mask = torch.tensor(maskVals, { shape: [T, T], device }).eq(1);
    const se = torch.tensor(values([B, H, T, T], 5), { shape: [B, H, T, T], device, requiresGrad: true });
    const sk = torch.tensor(values([B, H, T, T], 5), { shape: [B, H, T, T], device, requiresGrad: true });
    const W = torch.tensor(weightsLike(B * H * T * T), { shape: [B, H, T, T], device });
    const pe = fn(se, mask);
    pe.mul(W).sum().backward();
    const fast = torch.compile(fn);
    const pk = fast(sk, mask);
    pk.backward(W);
    const got = await pk.toArray();
    const want = await pe.toArray();
    for (let i = 0; i < got.length; i++) {
      const row = Math.floor(i / T) % T;
      expect(Number.isNaN(want[i]), `eager: the fully masked row is NaN (element ${i})`).toBe(row === T - 1);
      if (Number.isNaN(want[i])) expect(got[i], `compiled element ${i}`).toBeNaN();
      else expect(Math.abs(got[i] - want[i]), `compiled element ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-6);
    }
    const gk = await sk.grad!.toArray();
    const ge = await se.grad!.toArray();
    for (let i = 0; i < gk.length; i++) {
      if (Number.isNaN(ge[i])) expect(gk[i]).toBeNaN();
      else expect(Math.abs(gk[i] - ge[i]), `grad element ${i}`).toBeLessThanOrEqual(1e-5);
    }
    const fwd = kernelsOf(fast, 'forward');
    expect(rowKernels(fwd)).toHaveLength(1);
    expect(fwd.length, `forward kernels ${fwd.map((k) => k.name)}`).toBe(1);
    expect(rowKernels(fwd)[0].body.kind === 'row' && (rowKernels(fwd)[0].body as { kept: number[] }).kept).toEqual([B, H, T]);
    // the row kernel, and the inverted [T, T] mask (maskedFill's gradient) as a kernel of its own
    expect(kernelsOf(fast, 'backward').length).toBeLessThanOrEqual(2);
    expect(rowKernels(kernelsOf(fast, 'backward'))).toHaveLength(1);
  }, 300_000);

  it('scaledDotProductAttention (causal): its softmax is one row kernel; equal to eager', async () => {
    const [B, H, T, E] = [2, 2, 5, 4];
    const mk = (s: number) => torch.tensor(values([B, H, T, E], s), { shape: [B, H, T, E], device, requiresGrad: true });
    const fn = (q: T, k: T, v: T) => torch.nn.functional.scaledDotProductAttention(q, k, v, { isCausal: true });
    const [qe, ke, ve] = [mk(6), mk(7), mk(8)];
    const [qk, kk, vk] = [mk(6), mk(7), mk(8)];
    const W = torch.tensor(weightsLike(B * H * T * E), { shape: [B, H, T, E], device });
    fn(qe, ke, ve).mul(W).sum().backward();
    const fast = torch.compile(fn);
    const out = fast(qk, kk, vk);
    out.backward(W);
    await expectTensorClose(out, fn(qe.detach(), ke.detach(), ve.detach()), 1e-5, 'attention output');
    for (const [a, b, n] of [[qk, qe, 'q'], [kk, ke, 'k'], [vk, ve, 'v']] as const) await expectTensorClose(a.grad, b.grad, 1e-5, `attention grad ${n}`);
    const fwd = kernelsOf(fast, 'forward');
    const exps = fwd.filter((k) => k.covers.nodes.some((id) => fast.graphs()[0].irNodes('forward').find((n) => n.id === id)?.op === 'exp'));
    expect(exps.map((k) => k.body.kind)).toEqual(['row']);
  }, 300_000);

  it('attention as the user writes it (q @ k^T, scale, causal maskedFill, softmax, @ v) and scaledDotProductAttention: the same kernels; each [B, heads, T, T] tensor written once, two forward (scores, probabilities) and two backward (their gradients); softmax backward one row kernel; equal to eager', async () => {
    const [B, H, T, E] = [2, 3, 9, 4];
    const mk = (s: number) => torch.tensor(values([B, H, T, E], s), { shape: [B, H, T, E], device, requiresGrad: true });
    const byHand = (q: T, k: T, v: T) => {
      const mask = torch.tril(torch.ones([T, T], { device })).eq(0);
      return q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(E)).maskedFill(mask, -Infinity).softmax(-1).matmul(v);
    };
    const sdpa = (q: T, k: T, v: T) => torch.nn.functional.scaledDotProductAttention(q, k, v, { isCausal: true });
    const W = torch.tensor(weightsLike(B * H * T * E), { shape: [B, H, T, E], device });
    const names: string[][] = [];
    for (const [what, fn] of [['by hand', byHand], ['scaledDotProductAttention', sdpa]] as const) {
      const [qe, ke, ve] = [mk(6), mk(7), mk(8)];
      const [qk, kk, vk] = [mk(6), mk(7), mk(8)];
      fn(qe, ke, ve).mul(W).sum().backward();
      const fast = torch.compile(fn);
      const out = fast(qk, kk, vk);
      out.backward(W);
      await expectTensorClose(out, fn(qe.detach(), ke.detach(), ve.detach()), 1e-5, `${what}: output`);
      for (const [a, b, n] of [[qk, qe, 'q'], [kk, ke, 'k'], [vk, ve, 'v']] as const) await expectTensorClose(a.grad, b.grad, 1e-5, `${what}: grad ${n}`);
      for (const part of ['forward', 'backward'] as const) {
        const ks = kernelsOf(fast, part);
        // every value a kernel of this part writes that holds B * heads * T * T elements
        const big = ks.flatMap((k) => writtenSizes(k).filter(([, n]) => n === B * H * T * T).map(([v]) => v));
        expect(new Set(big).size, `${what} ${part}: each [B, heads, T, T] tensor written by one kernel`).toBe(big.length);
        expect(big.length, `${what} ${part}: [B, heads, T, T] tensors written (${ks.map((k) => k.name)})`).toBe(2);
        const rows = rowKernels(ks);
        expect(rows.map((k) => (k.body as RowBody).kept), `${what} ${part}: the softmax (or its gradient) is one row kernel`).toEqual([[B, H, T]]);
      }
      names.push(['forward', 'backward'].flatMap((p) => kernelsOf(fast, p as 'forward').map((k) => k.name.replace(/^k\d+_/, ''))));
    }
    // (in its own order: it builds the mask after the scores)
    expect([...names[1]].sort(), 'scaledDotProductAttention lowers to the kernels of attention written by hand').toEqual([...names[0]].sort());
  }, 300_000);

  it('NaN in a row propagates as in eager: softmax and layerNorm rows with a NaN are NaN', async () => {
    const shape = [3, 70];
    const v = values(shape, 9);
    v[75] = NaN; // row 1
    for (const fn of [(x: T) => x.softmax(-1), (x: T) => x.logSoftmax(-1), (x: T) => torch.nn.functional.layerNorm(x, [70])]) {
      const x = torch.tensor(v, { shape, device });
      const want = await fn(x).toArray();
      const got = await torch.compile(fn)(x).toArray();
      for (let i = 0; i < got.length; i++) {
        expect(Number.isNaN(want[i])).toBe(Math.floor(i / 70) === 1);
        if (Number.isNaN(want[i])) expect(got[i]).toBeNaN();
        else expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i])));
      }
    }
  }, 300_000);

  it('PyTorch values (models.json): softmax_3d, causal_softmax, layer_norm, cross_entropy (plain, ignoreIndex, labelSmoothing) compiled through row kernels', async () => {
    const rec = (name: string) => opsRecords.find((r) => r.name === name)!;
    const F = (name: string) => torch.tensor(Float32Array.from(opsTensors[name].values), { shape: opsTensors[name].shape, device, requiresGrad: true });
    const close = (got: ArrayLike<number>, want: number[], tol: number, what: string) => {
      expect(got.length).toBe(want.length);
      const scale = Math.max(...want.map(Math.abs), 1e-30);
      Array.from(got).forEach((g, i) => expect(Math.abs(g - want[i]) / scale, `${what} element ${i}: ${g} vs ${want[i]}`).toBeLessThanOrEqual(tol));
    };
    const ints = (n: string) => torch.tensor(Int32Array.from(opsIntTensors[n].values), { shape: opsIntTensors[n].shape, device });
    const tgt = ints('tgt');
    const tgtIgn = ints('tgt_ign');
    const tril = torch.tril(torch.ones([3, 3], { device })).eq(0);
    const entries: [string, (...a: T[]) => T][] = [
      ['softmax_3d', (v) => v.softmax(-1)],
      ['causal_softmax', (q, k) => q.matmul(k.transpose(-2, -1)).mul(0.5).maskedFill(tril, -Infinity).softmax(-1)],
      ['layer_norm', (a, g, b) => torch.nn.functional.layerNorm(a, [4], g, b)],
      ['cross_entropy', (l) => torch.nn.functional.crossEntropy(l, tgt)],
      ['cross_entropy_ignore', (l) => torch.nn.functional.crossEntropy(l, tgtIgn, { ignoreIndex: -100 })],
      ['cross_entropy_smooth', (l) => torch.nn.functional.crossEntropy(l, tgt, { labelSmoothing: 0.1 })],
    ];
    for (const [name, fn] of entries) {
      const r = rec(name);
      const xs = r.inputs.map(F);
      const fast = torch.compile(fn);
      const out = fast(...xs);
      close(await out.toArray(), r.out.values, 1e-6, `${name} on ${device}`);
      out.mul(torch.tensor(weightsLike(out.numel()), { shape: out.shape, device })).sum().backward();
      for (const [k, n] of r.inputs.entries()) {
        const want = r.grad_weighted[n];
        if (want) close(await xs[k].grad!.toArray(), want.values, 1e-5, `${name} grad ${n} on ${device}`);
      }
      expect(rowKernels(kernelsOf(fast, 'forward')).length, `${name}: forward row kernels`).toBeGreaterThanOrEqual(1);
      // (a batched matmul is still a broadcast multiply summed over K: that reduction stays)
      const opOf = new Map(fast.graphs()[0].irNodes('forward').map((n) => [n.id, n.op]));
      const outside = kernelsOf(fast, 'forward').filter((k) => k.body.kind !== 'row' && k.covers.nodes.some((id) => ['max', 'exp', 'log', 'sqrt'].includes(opOf.get(id)!)));
      expect(outside.map((k) => k.name), `${name}: max, exp, log, sqrt only in row kernels`).toEqual([]);
    }
  }, 300_000);

  it('a whole training step (Linear, layerNorm, Linear, crossEntropy, SGD): row kernels for both norms and the loss; equal to eager', async () => {
    const make = () => {
      torch.manualSeed(11);
      const l1 = new torch.nn.Linear(12, 40);
      const ln = new torch.nn.LayerNorm(40);
      const l2 = new torch.nn.Linear(40, 9);
      const model = new torch.nn.Sequential(l1, ln, l2).to(device);
      return { model, opt: new torch.optim.SGD(model.parameters(), { lr: 0.1 }) };
    };
    const x = torch.tensor(values([16, 12], 12), { shape: [16, 12], device });
    const y = torch.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 9), { shape: [16], device });
    const stepOf = (m: ReturnType<typeof make>) => () => {
      m.opt.zeroGrad();
      const loss = torch.nn.functional.crossEntropy(m.model(x), y);
      loss.backward();
      m.opt.step();
      return loss;
    };
    const e = make();
    const k = make();
    const eager = stepOf(e);
    const fast = torch.compile(stepOf(k));
    for (let i = 0; i < 3; i++) {
      const want = await eager().item();
      const got = await fast().item();
      expect(Math.abs(got - want), `step ${i}: ${got} vs ${want}`).toBeLessThanOrEqual(1e-5 * Math.abs(want));
    }
    const w = new Map(e.model.namedParameters());
    for (const [n, p] of k.model.namedParameters()) await expectTensorClose(p, w.get(n)!, 1e-5, `param ${n}`);
    const ks = fast.graphs().flatMap((g) => g.kernels.flatMap((ki) => partsOf(ki.kernel)));
    // layerNorm forward, its dx, its dweight + dbias (with their SGD updates on the cpu); and
    // crossEntropy's row part forward and backward in one kernel (the gradient of a mean does
    // not depend on the loss, so in a whole step both passes run in the same kernel)
    expect(rowKernels(ks).length, ks.map((x) => x.name).join(' ')).toBe(4);
    const text = rowKernels(ks).map((x) => printKernel(x)).join('\n');
    expect(text).toMatch(/kernel k\d+_row_sum_sum: row over \[40\] for each of \[16\]/);
    expect(text).toMatch(/r\d+ = max\(in\d+\) over the row|r\d+ = max\(e\d+\) over the row/);
  }, 300_000);
});

describe.runIf(webgpuAvailable)('row kernels under a small binding limit (webgpu)', () => {
  it('a row group that would bind more than the device allows is left to the other rules: every kernel within the limit, results unchanged', async () => {
    const C = 37;
    const xs = [[6, C], [6, C], [C], [C]].map((shape, i) => torch.tensor(values(shape, 20 + i), { shape }));
    // reads x, r, weight, bias and writes y: five buffers as one row kernel
    const t = torch.trace((x: T, r: T, w: T, b: T) => torch.nn.functional.layerNorm(x.add(r), [C], w, b), ...xs);
    const bind = interpreterBinding(t.program);
    const [want] = await interpretOutputs(t.graph, bind);
    const full = await runGpuPlan(t.graph, bind);
    expect(full.plan.kernels.map((k) => k.kind)).toEqual(['row']);
    expect(relDiff(full.outputs[0], want).rel).toBeLessThanOrEqual(1e-5);
    const limited = await runGpuPlan(t.graph, bind, { maxBindings: 4 });
    expect(await deviceError()).toBeNull();
    expect(limited.plan.schedule.log.join('\n')).toMatch(/\[row\] did not make a row kernel of .*: it would bind more than the device's 4 storage buffers/);
    expect(limited.plan.kernels.some((k) => k.kind === 'row')).toBe(false);
    // (the other rules may bind small buffers through one arena: the device sees one binding)
    for (const k of limited.plan.kernels) expect(boundBuffers(k.kernel), `${k.name} binds`).toBeLessThanOrEqual(4);
    expect(relDiff(limited.outputs[0], want).rel).toBeLessThanOrEqual(1e-5);
  }, 300_000);
});
