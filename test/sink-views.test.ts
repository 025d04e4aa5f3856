/**
 * sinkViews (src/passes/sink-views.ts): elementwise work on a reshape of a matmul's result runs
 * on the result itself, before the view, so it joins the matmul's epilogue. With another operand
 * (a Linear's bias over a [B, T, C] input) only where that operand lies within the dims the
 * reshape keeps at the end. Checked against the reference interpreter and eager on both devices.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { sinkViews } from '../src/passes/sink-views.ts';
import { testDevices } from './helpers/devices.ts';
import { expectTensorClose, interpretOutputs, interpreterBinding, relDiff } from './helpers/compile-util.ts';
import { graphCosts } from './helpers/model-stats.ts';

type T = torch.Tensor;
const F = torch.nn.functional;

/** a Linear on a [B, T, C] input (matmul of the [B*T, C] rows, reshaped back, plus the bias), then GELU */
const mlp = (lin: torch.nn.Linear, x: T) => F.gelu(lin(x));

describe('sinkViews with another operand', () => {
  it('a bias add and the GELU after it run on the [B*T, N] product; a residual of the full shape stays', async () => {
    torch.manualSeed(1);
    const lin = new torch.nn.Linear(6, 5);
    const x = torch.randn(2, 3, 6);
    const r = torch.randn(2, 3, 5);
    const t = torch.trace((a: T) => mlp(lin, a).add(r).sum(), x, { backward: true });
    const bind = interpreterBinding(t.program, t.graph.nodes.filter((n) => n.op === 'input' && n.phase === 'backward').map((n) => torch.ones(n.shape)));
    const want = await interpretOutputs(t.graph, bind);
    const g = sinkViews(t.graph);
    const got = await interpretOutputs(g, bind);
    got.forEach((v, i) => expect(relDiff(v, want[i]!).rel, `output ${i}`).toBe(0));
    const mm = g.nodes.find((n) => n.op === 'mm' && n.phase === 'forward')!;
    const bias = g.nodes.find((n) => n.op === 'add' && n.inputs.includes(mm.id));
    expect(bias?.shape, 'the bias add reads the product itself').toEqual([6, 5]);
    // the residual add has an operand of the view's full shape: it stays on [2, 3, 5]
    const isR = (id: number) => g.node(id).op === 'input' && g.node(id).shape.join() === '2,3,5';
    const residual = g.nodes.filter((n) => n.op === 'add' && n.inputs.some(isR));
    expect(residual.map((n) => n.shape)).toEqual([[2, 3, 5]]);
  });
});

describe.each(testDevices())('a Linear on a [B, T, C] input compiled on %s', (device) => {
  it('bias add and GELU are the matmul epilogue, forward and backward: equal to eager', async () => {
    torch.manualSeed(2);
    const lin = new torch.nn.Linear(8, 12).to(device);
    const x = torch.randn([4, 5, 8], { device });
    const step = torch.compile(() => {
      const loss = mlp(lin, x).sum();
      loss.backward();
      return loss;
    });
    const got = await step().item();
    const gw = lin.weight.grad!;
    lin.weight.grad = null;
    lin.bias!.grad = null;
    const want = mlp(lin, x).sum();
    want.backward();
    expect(got).toBeCloseTo(await want.item(), 3);
    await expectTensorClose(gw, lin.weight.grad, 1e-4, 'weight gradient');
    const [c] = graphCosts(step);
    // the forward matmul carries the bias and the GELU, a backward matmul the GELU's derivative: no
    // elementwise kernel of its own reads the [20, 12] product
    expect(c!.names.filter((n) => /erf|exp/.test(n) && !/^k\d+_mm/.test(n)), c!.names.join(', ')).toEqual([]);
    expect(c!.names.some((n) => /^k\d+_mmNT_add_mul_mul_erf/.test(n)), c!.names.join(', ')).toBe(true);
  }, 120_000);
});
