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

  it('an index out of range still fails the call with the check\'s error', async () => {
    const { wte, wpe } = make();
    const f = torch.compile((a: T, b: T, ix: T) => embed(a, b, ix).mul(3));
    await f(wte, wpe, idx()).toArray();
    const bad = torch.tensor(Int32Array.from([1, 4, 13, 0, 3, 1, 2, 9, 7, 1, 5, 5]), { dtype: 'int32', shape: [2, 6] }).to(device);
    await expect(async () => await f(wte, wpe, bad).toArray()).rejects.toThrow(/index 13 is out of bounds for dimension 0 with size 13 \(element 2 of the index, shape \[2, 6\]\)\. Fix/);
  });
});
