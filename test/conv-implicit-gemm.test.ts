/**
 * conv2d as an implicit GEMM (issue 12): the `im2col` index op and the matmuls over it.
 * Eager values against a direct six-loop convolution (strides, padding, dilation, uneven
 * pairs), on every device; gradients are checked by finite differences in
 * test/nn-gradcheck.test.ts and against PyTorch in test/models-nn-parity.test.ts.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';

const F = torch.nn.functional;
type P = [number, number];
type T = torch.Tensor;

/** The convolution by its definition, in doubles. */
function directConv(x: Float32Array, [N, C, H, W]: number[], w: Float32Array, [O, , kh, kw]: number[], b: Float32Array | null, s: P, p: P, d: P) {
  const Ho = Math.floor((H + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0]) + 1;
  const Wo = Math.floor((W + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1]) + 1;
  const out = new Float64Array(N * O * Ho * Wo);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let a = 0; a < Ho; a++)
        for (let c2 = 0; c2 < Wo; c2++) {
          let acc = b ? b[o] : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const y = a * s[0] - p[0] + i * d[0];
                const xx = c2 * s[1] - p[1] + j * d[1];
                if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
                acc += x[((n * C + c) * H + y) * W + xx] * w[((o * C + c) * kh + i) * kw + j];
              }
          out[((n * O + o) * Ho + a) * Wo + c2] = acc;
        }
  return { out, shape: [N, O, Ho, Wo] };
}

export const CONV_CASES: { name: string; x: number[]; w: number[]; bias: boolean; stride: P; padding: P; dilation: P }[] = [
  { name: '3x3', x: [2, 3, 6, 6], w: [4, 3, 3, 3], bias: true, stride: [1, 1], padding: [0, 0], dilation: [1, 1] },
  { name: '3x3 stride 2 padding 1', x: [2, 2, 7, 6], w: [3, 2, 3, 3], bias: true, stride: [2, 2], padding: [1, 1], dilation: [1, 1] },
  { name: 'uneven 2x3 kernel, stride [2, 1], padding [0, 2]', x: [1, 2, 6, 5], w: [5, 2, 2, 3], bias: false, stride: [2, 1], padding: [0, 2], dilation: [1, 1] },
  { name: 'dilation 2 stride 3 padding 2', x: [3, 1, 9, 8], w: [2, 1, 3, 2], bias: true, stride: [3, 3], padding: [2, 2], dilation: [2, 2] },
];

describe.each(testDevices())('conv2d through im2col on %s', (device) => {
  it.each(CONV_CASES.map((c) => [c.name, c] as const))('%s equals the direct convolution', async (_n, c) => {
    torch.manualSeed(3);
    const x = torch.randn(c.x);
    const w = torch.randn(c.w);
    const b = c.bias ? torch.randn([c.w[0]]) : null;
    const want = directConv(x.toArraySync() as Float32Array, c.x, w.toArraySync() as Float32Array, c.w, b ? (b.toArraySync() as Float32Array) : null, c.stride, c.padding, c.dilation);
    const y = F.conv2d(x.to(device), w.to(device), b?.to(device), { stride: c.stride, padding: c.padding, dilation: c.dilation });
    expect(y.shape).toEqual(want.shape);
    const got = await y.toArray();
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want.out[i]));
    expect(worst).toBeLessThan(1e-4);
  });

  it('the gradient rules are the conv\'s own (ConvolutionBackward), on both inputs and the bias', async () => {
    torch.manualSeed(4);
    const x = torch.randn([2, 2, 5, 5], { device, requiresGrad: true });
    const w = torch.randn([3, 2, 3, 3], { device, requiresGrad: true });
    const b = torch.randn([3], { device, requiresGrad: true });
    const y = F.conv2d(x, w, b, { padding: 1 });
    expect(y.gradFn?.name).toBe('ConvolutionBackward');
    y.sum().backward();
    // d(sum)/d(bias) counts the output positions; d(sum)/dx at the centre sums every weight of its channel
    expect(await b.grad!.tolist()).toEqual([50, 50, 50]);
    const gx = await x.grad!.toArray();
    const wv = await w.toArray();
    let want = 0;
    for (let o = 0; o < 3; o++) for (let q = 0; q < 9; q++) want += wv[o * 18 + q];
    expect(gx[2 * 5 + 2]).toBeCloseTo(want, 4);
  });
});

/** Every buffer size (bytes) the webgpu pool is asked for while fn runs. */
async function acquiredSizes(fn: () => Promise<void>): Promise<number[]> {
  const { context } = await import('../src/runtime/webgpu/index.ts');
  const pool = context().pool;
  const sizes: number[] = [];
  const acquire = pool.acquire.bind(pool);
  pool.acquire = (bytes: number) => {
    sizes.push(bytes);
    return acquire(bytes);
  };
  try {
    await fn();
  } finally {
    pool.acquire = acquire;
  }
  return sizes;
}

const kernelsOf = (f: { graphs(): torch.CompiledGraph[] }) => f.graphs().flatMap((g) => g.kernels.flatMap((k) => (k.kernel.body.kind === 'pack' ? k.kernel.body.parts : [k.kernel])));

describe.each(testDevices())('compiled conv2d on %s: the patch matrix is read inside the matmuls', (device) => {
  it('conv2d + bias + relu is one matmul kernel (its relu in the epilogue), equal to eager', async () => {
    torch.manualSeed(5);
    const x = torch.randn([2, 3, 7, 6], { device });
    const w = torch.randn([4, 3, 3, 3], { device });
    const b = torch.randn([4], { device });
    const block = (x: T, w: T, b: T) => F.relu(F.conv2d(x, w, b, { stride: 2, padding: 1 }));
    const f = torch.compile((x: T, w: T, b: T) => block(x, w, b).sum([2, 3]));
    const got = await f(x, w, b).toArray();
    const want = await block(x, w, b).sum([2, 3]).toArray();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    const ks = kernelsOf(f);
    const mm = ks.filter((k) => k.body.kind === 'matmul');
    expect(mm).toHaveLength(1);
    const ops = mm[0].covers.nodes.map((id) => f.graphs()[0].irNodes('forward').find((n) => n.id === id)?.op);
    expect(ops).toEqual(['im2col', 'mm', 'add', 'relu']);
    expect(mm[0].body.kind === 'matmul' && mm[0].body.windowA?.stride).toEqual([2, 2]);
    // the block is one kernel; the other one is the spatial sum
    expect(ks).toHaveLength(2);
    expect(ks.some((k) => k.body.kind === 'index')).toBe(false);
  });

  it('a whole training step of conv -> relu -> conv (stride, padding, dilation): equal to eager, no im2col kernel, no patch-sized buffer', async () => {
    const make = () => {
      torch.manualSeed(6);
      const c1 = new torch.nn.Conv2d(2, 4, 3, { padding: 1, device });
      const c2 = new torch.nn.Conv2d(4, 3, 3, { stride: 2, dilation: [1, 2], padding: [0, 1], device });
      const model = new torch.nn.Sequential(c1, new torch.nn.ReLU(), c2);
      return { model, opt: new torch.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }) };
    };
    torch.manualSeed(7);
    const x = torch.randn([3, 2, 9, 8], { device });
    const target = torch.randn([3, 3, 4, 3], { device });
    const stepOf = ({ model, opt }: ReturnType<typeof make>) => () => {
      const loss = F.mseLoss(model(x) as T, target);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss;
    };
    const eager = make();
    const comp = make();
    const step = torch.compile(stepOf(comp));
    const eagerStep = stepOf(eager);
    let want: number[] = [];
    const patchBytes = [3 * 9 * 8 * (2 * 9), 3 * 4 * 3 * (4 * 9), 3 * 9 * 8 * (3 * 9)].map((n) => 4 * n); // conv1, conv2, conv2's input gradient (transposed)
    const losses = async (f: () => T) => {
      const out: number[] = [];
      for (let i = 0; i < 3; i++) out.push(await f().item());
      return out;
    };
    let got: number[] = [];
    const sizes = device === 'webgpu' ? await acquiredSizes(async () => void (got = await losses(step))) : ((got = await losses(step)), []);
    const eagerSizes = device === 'webgpu' ? await acquiredSizes(async () => void (want = await losses(eagerStep))) : ((want = await losses(eagerStep)), []);
    for (let i = 0; i < 3; i++) expect(got[i]).toBeCloseTo(want[i], 4);
    if (device === 'webgpu') {
      for (const p of patchBytes) expect(sizes.filter((s) => s === p), `a buffer of ${p} bytes`).toEqual([]);
      // the observation itself works: eager mode writes the patch matrices
      expect(eagerSizes).toContain(patchBytes[0]);
      expect(eagerSizes).toContain(patchBytes[1]);
    }
    for (const [[name, p], [, q]] of comp.model.namedParameters().map((e, i) => [e, eager.model.namedParameters()[i]] as const)) {
      const [a, b] = [await p.toArray(), await q.toArray()];
      for (let i = 0; i < a.length; i++) expect(a[i], name).toBeCloseTo(b[i], 4);
    }
    // (the first step, with no momentum buffers yet, is a graph of its own: look at the steady one)
    const ks = kernelsOf({ graphs: () => step.graphs().slice(-1) });
    expect(ks.filter((k) => k.body.kind === 'index')).toEqual([]);
    // forward 2, weight gradients 2, the input gradient of conv2 1: each a matmul reading through the map
    const windowed = ks.filter((k) => k.body.kind === 'matmul' && (k.body.windowA || k.body.windowB));
    expect(windowed).toHaveLength(5);
    expect(windowed.filter((k) => k.body.kind === 'matmul' && k.body.windowA?.transposed)).toHaveLength(1);
  });
});

describe.each(testDevices())('pools through im2col on %s', (device) => {
  it('maxPool2d sends a tied window\'s gradient to its first maximum (PyTorch), padding reads -inf, avgPool2d counts padded zeros; compiled equals eager', async () => {
    // relu outputs tie at 0: every window of the second image is all zeros
    const x0 = torch.tensor([[[[1, 3, 2, -1, 0], [3, 0, -2, 5, 5], [0, 1, 4, 4, -3], [2, 2, 0, 1, 1]]], [[[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]]]);
    const f = (x: T) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }).mul(torch.tensor([[[[1, 2, 3], [4, 5, 6]]]], { device })).sum().add(F.avgPool2d(x, 2, { padding: 1 }).sum().mul(0.5));
    const run = async (fn: (x: T) => T) => {
      const x = x0.to(device).clone().requiresGrad_(); // (to(cpu) of a cpu tensor is itself: each run its own leaf)
      const y = fn(x);
      y.backward();
      return { y: await y.item(), g: await x.grad!.toArray() };
    };
    const eager = await run(f);
    const comp = await run(torch.compile(f));
    expect(comp.y).toBeCloseTo(eager.y, 5);
    expect([...comp.g]).toEqual([...eager.g]);
    // the zero image: avgPool2d(2, padding 1) puts each element in one window (0.5 / 4 each), and each
    // max window's gradient lands on its first element only
    const maxPart = [...eager.g].slice(20).map((v) => v - 0.5 / 4);
    // maxPool2d(3, stride 2, padding 1) windows start at rows -1, 1 and cols -1, 1, 3: first in-range element of each
    const want = new Array(20).fill(0);
    [[0, 0, 1], [0, 1, 2], [0, 3, 3], [1, 0, 4], [1, 1, 5], [1, 3, 6]].forEach(([r, c, w]) => (want[r * 5 + c] += w));
    for (let i = 0; i < 20; i++) expect(maxPart[i]).toBeCloseTo(want[i], 5);
  });
});
