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
