/**
 * [scatter-select] (src/passes/scatter-select.ts): pieces written over disjoint equal ranges of
 * a zero tensor (a split's or chunk's gradient, a cat) are one elementwise select that reads
 * each piece where it lies. Checked on both devices against eager and against the reference
 * interpreter on the unrewritten graph; fewer kernels than with the rule off
 * (WGTORCH_SCATTER_SELECT=0); the fusion log names the rule when it fires and when it refuses.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { optimize } from '../src/compile/optimize.ts';
import { scatterSelect } from '../src/passes/scatter-select.ts';
import { reshapeStrides } from '../src/passes/views.ts';
import { testDevices } from './helpers/devices.ts';
import { captureLogs, expectTensorClose, interpretOutputs, interpreterBinding, relDiff } from './helpers/compile-util.ts';
import { countKernels, graphCosts } from './helpers/model-stats.ts';

type T = torch.Tensor;
const F = torch.nn.functional;
const B = 2;
const S = 8;
const C = 12;
const H = 3;

/** attention's qkv: one matmul, split into q, k, v, each viewed as heads (the GPT example's block) */
function attention(x: T, w: T, bias: T, out: T): T {
  const [q0, k0, v0] = x.matmul(w.t()).add(bias).split(C, 2);
  const heads = (t: T) => t.view(B, S, H, C / H).transpose(1, 2);
  const [q, k, v] = [heads(q0), heads(k0), heads(v0)];
  const att = F.softmax(q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(C / H)), { dim: -1 });
  const y = att.matmul(v).transpose(1, 2).contiguous().view(B, S, C);
  return y.mul(out).sum();
}

/** a chunk whose middle piece is unused: its gradient chunk is zeros */
function chunked(x: T, w: T): T {
  const [a, , c] = x.mm(w).chunk(3, 1);
  return a.tanh().mul(c).sum();
}

function inputs(device: torch.Device, seed: number) {
  torch.manualSeed(seed);
  return {
    x: torch.randn([B, S, C], { device }),
    w: torch.randn([3 * C, C], { device }).mul(0.3).requiresGrad_(),
    bias: torch.randn([3 * C], { device }).requiresGrad_(),
    out: torch.randn([B, S, C], { device }),
    x2: torch.randn([5, 4], { device }).requiresGrad_(),
    w2: torch.randn([4, 6], { device }).requiresGrad_(),
  };
}

const sliceKernels = (fn: Parameters<typeof countKernels>[0]) =>
  countKernels(fn, (name) => /sliceScatter|full|_slice$/.test(name) || /^k\d+_copy$/.test(name));

afterEach(() => {
  delete process.env.WGTORCH_SCATTER_SELECT;
});

describe('reshapeStrides: a reshape of a strided view as a view', () => {
  it('splits dims of any view, merges only dims that lie evenly, keeps size-1 dims', () => {
    // [4, 16, 4, 8] read from a [4, 4, 16, 8] tensor through permute(0, 2, 1, 3)
    const strides = [512, 8, 128, 1];
    // a dim of size 1 takes any stride
    expect(reshapeStrides([4, 16, 4, 8], strides, [4, 16, 1, 4, 8])?.filter((_, i) => i !== 2)).toEqual([512, 8, 128, 1]);
    expect(reshapeStrides([4, 16, 4, 8], strides, [4, 16, 4, 2, 4])).toEqual([512, 8, 128, 4, 1]);
    expect(reshapeStrides([4, 16, 4, 8], strides, [64, 4, 8])).toBeNull(); // 4 x 16 lie 8 apart, not evenly
    expect(reshapeStrides([4, 16, 4, 8], strides, [4, 16, 32])).toBeNull(); // the heads: 128 apart, not 8
    expect(reshapeStrides([6, 4], [1, 6], [3, 2, 4])).toEqual([2, 1, 6]);
    expect(reshapeStrides([6, 4], [1, 6], [24])).toBeNull();
  });
});

describe('[scatter-select] keeps the reference interpreter results', () => {
  it('the attention block: split into q, k, v and its gradient as the sum of three sliceScatters', async () => {
    const { x, w, bias, out } = inputs('cpu', 1);
    const t = torch.trace((a: T) => attention(a, w, bias, out), x, { backward: true });
    const bind = interpreterBinding(t.program, t.graph.nodes.filter((n) => n.op === 'input' && n.phase === 'backward').map((n) => torch.ones(n.shape)));
    const want = await interpretOutputs(t.graph, bind);
    const g = scatterSelect(t.graph);
    expect(g).not.toBe(t.graph);
    const got = await interpretOutputs(g, bind);
    got.forEach((v, i) => expect(relDiff(v, want[i]!).rel, `output ${i}`).toBe(0)); // a select returns the pieces as they are
    const opt = optimize(t.graph);
    expect(opt.nodes.filter((n) => n.op === 'sliceScatter' || n.op === 'full').map((n) => n.op)).toEqual([]);
    expect(opt.nodes.filter((n) => n.op === 'where').length).toBe(2);
  });
});

describe.each(testDevices())('[scatter-select] compiled on %s', (device) => {
  it('attention: gradients of the split equal eager, the full + sliceScatters + copies + add are one select kernel', async () => {
    const compiledGrads = async (off: boolean) => {
      if (off) process.env.WGTORCH_SCATTER_SELECT = '0';
      else delete process.env.WGTORCH_SCATTER_SELECT;
      const { x, w, bias, out } = inputs(device, 2);
      const step = torch.compile(() => {
        const loss = attention(x, w, bias, out);
        loss.backward();
        return loss;
      });
      const { result: loss, lines } = await captureLogs(['fusion'], async () => await step().item());
      return { loss, w: w.grad!, bias: bias.grad!, step, lines };
    };
    const { x, w, bias, out } = inputs(device, 2);
    const want = attention(x, w, bias, out);
    want.backward();
    const on = await compiledGrads(false);
    const off = await compiledGrads(true);
    expect(on.loss).toBeCloseTo(await want.item(), 4);
    await expectTensorClose(on.w, w.grad, 1e-4, 'qkv weight gradient');
    await expectTensorClose(on.bias, bias.grad, 1e-4, 'qkv bias gradient');
    await expectTensorClose(on.w, off.w, 1e-5, 'qkv weight gradient, rule on and off');
    const [a] = graphCosts(on.step);
    const [b] = graphCosts(off.step);
    console.log(`attention step on ${device}: ${a!.fusedKernels} kernels with [scatter-select], ${b!.fusedKernels} without`);
    expect(a!.fusedKernels).toBeLessThanOrEqual(b!.fusedKernels - 5);
    expect(sliceKernels(off.step), 'zero fill, sliceScatters and copies without the rule').toBeGreaterThanOrEqual(5);
    expect(countKernels(on.step, (n) => /sliceScatter|full/.test(n))).toBe(0);
    expect(countKernels(on.step, (n) => /where/.test(n))).toBe(1);
    const fired = on.lines.map((l) => l.message).filter((m) => m.includes('[scatter-select]'));
    expect(fired.some((m) => /3 pieces along dim 2/.test(m)), fired.join('\n')).toBe(true);
    expect(off.lines.some((l) => l.message.includes('[scatter-select]'))).toBe(false);
  }, 300_000);

  it('chunk with an unused piece: its gradient chunk is zeros', async () => {
    const { x2, w2 } = inputs(device, 3);
    const want = chunked(x2, w2);
    want.backward();
    const wantX = x2.grad!;
    const wantW = w2.grad!;
    x2.grad = null;
    w2.grad = null;
    const step = torch.compile(() => {
      const loss = chunked(x2, w2);
      loss.backward();
      return loss;
    });
    const { result, lines } = await captureLogs(['fusion'], async () => await step().item());
    expect(result).toBeCloseTo(await want.item(), 4);
    await expectTensorClose(x2.grad, wantX, 1e-5, 'x gradient');
    await expectTensorClose(w2.grad, wantW, 1e-5, 'w gradient');
    expect(lines.some((l) => /\[scatter-select\].*2 pieces along dim 1.*and 1 zero chunk/.test(l.message)), lines.map((l) => l.message).join('\n')).toBe(true);
    expect(countKernels(step, (n) => /sliceScatter|full/.test(n))).toBe(0);
  }, 300_000);

  it('cat of matmul and elementwise results: one select; unequal pieces are refused in the log and still equal eager', async () => {
    const { x2, w2 } = inputs(device, 4);
    const w3 = torch.randn([4, 4], { device });
    const cat = (a: T) => torch.cat([a.mm(w3), a.tanh(), a.mm(w3).relu()], 1).mul(2);
    const uneven = (a: T) => torch.cat([a.mm(w2), a.tanh()], 1).mul(2);
    const fast = torch.compile(cat);
    const { result, lines } = await captureLogs(['fusion'], () => fast(x2.detach()));
    await expectTensorClose(result, cat(x2.detach()), 1e-5, 'cat');
    expect(lines.some((l) => /\[scatter-select\] %\d+ sliceScatter \[5,12\]: 3 pieces along dim 1/.test(l.message)), lines.map((l) => l.message).join('\n')).toBe(true);
    expect(countKernels(fast, (n) => /sliceScatter|full/.test(n))).toBe(0);
    const fast2 = torch.compile(uneven);
    const r2 = await captureLogs(['fusion'], () => fast2(x2.detach()));
    await expectTensorClose(r2.result, uneven(x2.detach()), 1e-5, 'uneven cat');
    expect(r2.lines.some((l) => /\[scatter-select\] refused .*not of one length.*lengths 6, 4/.test(l.message)), r2.lines.map((l) => l.message).join('\n')).toBe(true);
  }, 300_000);
});
