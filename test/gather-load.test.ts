/**
 * A gather read as a load of its consumer (issue 12, rule [gather-load]): the token and
 * position embeddings of a GPT and their add are one elementwise kernel, the gathered
 * [B, T, C] tensors are never written; compiled equals eager on every device, gradients too,
 * and an index out of range still raises the check's error and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';

const F = torch.nn.functional;
type T = torch.Tensor;
const kernelsOf = (f: { graphs(): torch.CompiledGraph[] }) => f.graphs().flatMap((g) => g.kernels.flatMap((k) => (k.kernel.body.kind === 'pack' ? k.kernel.body.parts : [k.kernel])));

describe.each(testDevices())('gather as a load on %s', (device) => {
  const make = () => {
    torch.manualSeed(11);
    return { wte: torch.randn([13, 8], { device }), wpe: torch.randn([6, 8], { device }) };
  };
  const idx = () => torch.tensor(Int32Array.from([1, 4, 12, 0, 3, -1, 2, 9, 7, 1, 5, 5]), { dtype: 'int32', shape: [2, 6] }).to(device);
  const embed = (wte: T, wpe: T, ix: T) => F.embedding(ix, wte).add(F.embedding(torch.arange(6, { dtype: 'int32', device }), wpe));

  it('token + position embedding add: one float kernel reads both tables, no gather kernel, no [B, T, C] gathered tensor; equal to eager', async () => {
    const { wte, wpe } = make();
    const f = torch.compile((a: T, b: T, ix: T) => embed(a, b, ix).mul(3));
    const got = await f(wte, wpe, idx()).toArray();
    const want = await embed(wte, wpe, idx()).mul(3).toArray();
    // (the cpu target keeps doubles inside a kernel: equal within float32 rounding)
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    const ks = kernelsOf(f);
    expect(ks.filter((k) => k.body.kind === 'index')).toEqual([]);
    const float = ks.filter((k) => k.body.kind === 'elementwise' && k.body.outputs.some((o) => o.dtype === 'float32'));
    expect(float).toHaveLength(1);
    const body = float[0].body;
    expect(body.kind === 'elementwise' && body.inputs.filter((x) => x.access === 'gather').length).toBe(2);
    // what it writes is the [2, 6, 8] result only
    expect(float[0].bindings.filter((b) => b.access === 'write')).toHaveLength(1);
  });

  it('a training step through the embeddings: gradients (scatterAdd of repeated rows) equal eager', async () => {
    const run = async (compiled: boolean) => {
      const { wte, wpe } = make();
      wte.requiresGrad_();
      wpe.requiresGrad_();
      const target = torch.ones([2, 6, 8], { device });
      const loss = (a: T, b: T, ix: T) => F.mseLoss(F.relu(embed(a, b, ix)), target);
      const l = (compiled ? torch.compile(loss) : loss)(wte, wpe, idx());
      l.backward();
      return { l: await l.item(), g1: [...(await wte.grad!.toArray())], g2: [...(await wpe.grad!.toArray())] };
    };
    const [e, c] = [await run(false), await run(true)];
    expect(c.l).toBeCloseTo(e.l, 6);
    for (let i = 0; i < e.g1.length; i++) expect(c.g1[i]).toBeCloseTo(e.g1[i], 6);
    for (let i = 0; i < e.g2.length; i++) expect(c.g2[i]).toBeCloseTo(e.g2[i], 6);
  });

  // a GPT's input: the embedding sum feeds the first layerNorm (a row kernel) and the residual
  // stream (here the epilogue of the matmul after the layerNorm), so the row kernel writes it once
  const lnW = () => torch.randn([8], { device }).mul(0.5).add(1);
  const lnB = () => torch.randn([8], { device }).mul(0.1);
  const block = (a: T, b: T, ix: T, w: T, bias: T, proj: T) => {
    const x = embed(a, b, ix);
    return F.layerNorm(x, [8], w, bias).matmul(proj).add(x);
  };
  const rowKernels = (ks: ReturnType<typeof kernelsOf>) => ks.filter((k) => k.body.kind === 'row');

  it('token + position embedding + layerNorm: one row kernel loads both tables, no gather kernel; it writes the embedding sum once for the residual; equal to eager', async () => {
    const { wte, wpe } = make();
    const [w, bias, proj] = [lnW(), lnB(), torch.randn([8, 8], { device })];
    const f = torch.compile(block);
    const got = await f(wte, wpe, idx(), w, bias, proj).toArray();
    const want = await block(wte, wpe, idx(), w, bias, proj).toArray();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    const ks = kernelsOf(f);
    expect(ks.filter((k) => k.body.kind === 'index'), 'gather kernels').toEqual([]);
    const rows = rowKernels(ks);
    expect(rows).toHaveLength(1);
    const body = rows[0].body;
    if (body.kind !== 'row') throw new Error('not a row kernel');
    expect(body.inputs.filter((x) => x.access === 'gather').length).toBe(2);
    // it writes the normalised rows and the embedding sum (read again by the residual add), nothing gathered
    const written = rows[0].bindings.filter((b) => b.access === 'write');
    expect(written).toHaveLength(2);
    expect(body.outputs.every((o) => o.per === 'element')).toBe(true);
    // the index normalisations (negative indices count from the end) and the matmul are the other kernels
    // besides the index normalisations (negative indices count from the end): the row kernel, the
    // matmul and the residual add (a 3-D add on the 2-D product's view), which reads the sum it wrote
    const float = ks.filter((k) => k.body.kind !== 'elementwise' || k.body.outputs.some((o) => o.dtype === 'float32'));
    expect(float.map((k) => k.body.kind)).toEqual(['row', 'matmul', 'elementwise']);
    const sum = written.find((b) => float[2].bindings.some((r) => r.access === 'read' && r.value === b.value));
    expect(sum, 'the residual add reads the embedding sum the row kernel wrote').toBeDefined();
  });

  it('embedding + layerNorm alone: the row kernel is the only float kernel, and the embedding sum is not written', async () => {
    const { wte, wpe } = make();
    const [w, bias] = [lnW(), lnB()];
    const fn = (a: T, b: T, ix: T, w: T, bias: T) => F.layerNorm(embed(a, b, ix), [8], w, bias);
    const f = torch.compile(fn);
    const got = await f(wte, wpe, idx(), w, bias).toArray();
    const want = await fn(wte, wpe, idx(), w, bias).toArray();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    const ks = kernelsOf(f);
    const float = ks.filter((k) => k.body.kind !== 'elementwise' || k.body.outputs.some((o) => o.dtype === 'float32'));
    expect(float.map((k) => k.body.kind)).toEqual(['row']);
    expect(float[0].bindings.filter((b) => b.access === 'write')).toHaveLength(1);
  });

  it('embedding + layerNorm trained: loss and the gradients of both tables and the layerNorm weights equal eager', async () => {
    const run = async (compiled: boolean) => {
      const { wte, wpe } = make();
      const w = lnW();
      const bias = lnB();
      const proj = torch.randn([8, 8], { device });
      for (const t of [wte, wpe, w, bias]) t.requiresGrad_();
      const target = torch.ones([2, 6, 8], { device });
      const loss = (a: T, b: T, ix: T, w: T, bias: T) => F.mseLoss(block(a, b, ix, w, bias, proj), target);
      const l = (compiled ? torch.compile(loss) : loss)(wte, wpe, idx(), w, bias);
      l.backward();
      return { l: await l.item(), grads: await Promise.all([wte, wpe, w, bias].map(async (t) => [...(await t.grad!.toArray())])) };
    };
    const [e, c] = [await run(false), await run(true)];
    expect(c.l).toBeCloseTo(e.l, 5);
    e.grads.forEach((ge, j) => ge.forEach((v, i) => expect(c.grads[j][i], `grad ${j}[${i}]`).toBeCloseTo(v, 4)));
  });

  it('a row kernel\'s gathered load of an index out of range: the call fails with the check\'s error, weights unchanged', async () => {
    const { wte, wpe } = make();
    const [w, bias] = [lnW(), lnB()];
    const fn = (a: T, b: T, ix: T, w: T, bias: T) => F.layerNorm(embed(a, b, ix), [8], w, bias);
    const f = torch.compile(fn);
    await f(wte, wpe, idx(), w, bias).toArray();
    expect(rowKernels(kernelsOf(f))).toHaveLength(1);
    const before = [...(await wte.toArray())];
    const bad = torch.tensor(Int32Array.from([1, 4, 12, 0, 3, 1, 2, 9, -14, 1, 5, 5]), { dtype: 'int32', shape: [2, 6] }).to(device);
    await expect(async () => await f(wte, wpe, bad, w, bias).toArray()).rejects.toThrow(/index -14 is out of bounds for dimension 0 with size 13/);
    expect([...(await wte.toArray())]).toEqual(before);
  });

  it('an index out of range still fails the call with the check\'s error', async () => {
    const { wte, wpe } = make();
    const f = torch.compile((a: T, b: T, ix: T) => embed(a, b, ix).mul(3));
    await f(wte, wpe, idx()).toArray();
    const bad = torch.tensor(Int32Array.from([1, 4, 13, 0, 3, 1, 2, 9, 7, 1, 5, 5]), { dtype: 'int32', shape: [2, 6] }).to(device);
    await expect(async () => await f(wte, wpe, bad).toArray()).rejects.toThrow(/index 13 is out of bounds for dimension 0 with size 13 \(element 2 of the index, shape \[2, 6\]\)\. Fix/);
  });
});
