/**
 * Finite-difference gradient checks of torch.nn's functional forms beyond the seed (the
 * composites of registry ops): conv2d, pools, layerNorm, batchNorm, embedding, attention,
 * crossEntropy with ignoreIndex / labelSmoothing and [N, C, d] logits. Same tolerance as
 * test/gradcheck.test.ts, and every case also fails with a gradient 10% off. Then the bad
 * inputs, whose errors name the op, the shapes and the fix.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { gradcheck, leafFactory, worstRatio, type Gen } from './helpers/gradcheck.ts';

const ATOL = 3e-4;
const RTOL = 3e-4;
const F = torch.nn.functional;
type T = torch.Tensor;
type Leaf = (shape: number[], gen?: Gen, requiresGrad?: boolean) => T;
const int = (v: number[], shape?: number[]) => torch.tensor(Int32Array.from(v), { dtype: 'int32', shape });

const CASES: [string, (p: Leaf) => T[], (...xs: T[]) => T][] = [
  ['conv2d 3x3', (p) => [p([2, 2, 5, 5]), p([3, 2, 3, 3]), p([3])], (x, w, b) => F.conv2d(x, w, b)],
  ['conv2d stride 2 padding 1, no bias', (p) => [p([1, 2, 5, 4]), p([2, 2, 3, 3])], (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1 })],
  ['conv2d 2x1 kernel, unbatched', (p) => [p([2, 4, 3]), p([2, 2, 2, 1])], (x, w) => F.conv2d(x, w)],
  // the transposed map of the input gradient: a last row no window reaches, uneven stride and padding, dilation
  ['conv2d stride [2, 1] padding [1, 0] on an even input', (p) => [p([1, 2, 6, 5]), p([2, 2, 3, 2]), p([2])], (x, w, b) => F.conv2d(x, w, b, { stride: [2, 1], padding: [1, 0] })],
  ['conv2d dilation 2 stride 2 padding 1', (p) => [p([2, 1, 7, 6]), p([2, 1, 2, 3])], (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1, dilation: 2 })],
  ['maxPool2d 2', (p) => [p([1, 2, 4, 4], 'distinct')], (x) => F.maxPool2d(x, 2)],
  ['maxPool2d 3 stride 2 padding 1', (p) => [p([1, 1, 5, 5], 'distinct')], (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 })],
  ['avgPool2d 2 stride 1', (p) => [p([2, 1, 3, 4])], (x) => F.avgPool2d(x, 2, { stride: 1 })],
  ['layerNorm [4] affine', (p) => [p([3, 4]), p([4]), p([4])], (x, w, b) => F.layerNorm(x, [4], w, b)],
  ['layerNorm [2, 3]', (p) => [p([2, 2, 3])], (x) => F.layerNorm(x, [2, 3])],
  ['batchNorm training 2d affine', (p) => [p([3, 2, 2, 2]), p([2]), p([2])], (x, w, b) => F.batchNorm(x, null, null, { weight: w, bias: b, training: true })],
  ['batchNorm eval', (p) => [p([4, 3]), p([3], 'positive', false)], (x, rv) => F.batchNorm(x, torch.zeros(3), rv, { training: false })],
  ['embedding (rows repeat)', (p) => [p([5, 3])], (w) => F.embedding(int([1, 4, 1, 0], [2, 2]), w)],
  ['scaledDotProductAttention causal', (p) => [p([2, 3, 2]), p([2, 3, 2]), p([2, 3, 2])], (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true })],
  ['scaledDotProductAttention float mask', (p) => [p([1, 2, 3]), p([1, 4, 3]), p([1, 4, 2])], (q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: torch.tensor([[0, -1, 0.5, 0], [1, 0, 0, -2]]) })],
  ['crossEntropy ignoreIndex + labelSmoothing', (p) => [p([4, 3])], (x) => F.crossEntropy(x, int([0, -100, 2, 1]), { labelSmoothing: 0.2 })],
  ['crossEntropy [N, C, d] reduction none', (p) => [p([2, 3, 2])], (x) => F.crossEntropy(x, int([0, 2, 1, 1], [2, 2]), { reduction: 'none' })],
  ['crossEntropy probabilities + smoothing', (p) => [p([2, 3]), p([2, 3], 'positive', false)], (x, t) => F.crossEntropy(x, t.div(t.sum(1, true)), { labelSmoothing: 0.1 })],
  ['gelu / silu', (p) => [p([3, 2])], (x) => F.gelu(x).add(F.silu(x.mul(2)))],
];

describe('gradcheck: torch.nn functional forms', () => {
  it.each(CASES.map((c, i) => [c[0], c, i] as const))('%s', (_l, [, inputs, fn], i) => {
    const res = gradcheck(fn, inputs(leafFactory(100 + i)), { seed: 7 + i });
    expect(worstRatio(res, ATOL, RTOL)).toBeLessThanOrEqual(1);
    expect(worstRatio(res, ATOL, RTOL, 1.1), 'a 10% wrong gradient must fail').toBeGreaterThan(1);
  });
});

describe('bad input names the op, the shapes and the fix', () => {
  it('conv2d: channel mismatch, kernel larger than the input, wrong weight rank, wrong bias', () => {
    const w = torch.zeros(3, 2, 3, 3);
    expect(() => F.conv2d(torch.zeros(1, 4, 5, 5), w)).toThrow(
      /conv2d: given groups=1, weight of size \[3, 2, 3, 3\], expected input\[1, 4, 5, 5\] to have 2 channels, but got 4 channels instead\. Fix/,
    );
    expect(() => new torch.nn.Conv2d(2, 3, 3)(torch.zeros(1, 4, 5, 5))).toThrow(/to have 2 channels, but got 4/);
    expect(() => F.conv2d(torch.zeros(1, 2, 2, 2), w)).toThrow(/padded input size per channel: \(2 x 2\)\. Kernel size: \(3 x 3\).*Fix/);
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3))).toThrow(/expected a 4-D weight .* got \[3, 2, 3\]/);
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), w, torch.zeros(2))).toThrow(/expected bias of shape \[3\]/);
    expect(() => F.conv2d(torch.zeros(4, 5, 5), w)).toThrow(/expected input\[4, 5, 5\] to have 2 channels, but got 4 channels instead\. Fix: the input's dim 0/);
    expect(() => F.conv2d(torch.zeros(5, 5), w)).toThrow(/conv2d: expected 3D \(unbatched\) or 4D \(batched\) input/);
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), w, null, { stride: 0 })).toThrow(/stride must be a positive integer/);
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), w, null, { dilation: 0 })).toThrow(/conv2d: dilation must be a positive integer/);
    // dilation widens the kernel: 3 taps 3 apart span 7 rows
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), w, null, { dilation: 3 })).toThrow(/padded input size per channel: \(5 x 5\)\. Kernel size: \(7 x 7\).*Fix/);
    expect(() => F.conv2d(torch.zeros(1, 2, 5, 5), w, null, { pad: 1 } as never)).toThrow(/unknown option 'pad'/);
  });

  it('pools, embedding, oneHot and attention', () => {
    expect(() => F.maxPool2d(torch.zeros(1, 1, 4, 4), 2, { padding: 2 })).toThrow(/pad should be at most half of effective kernel size/);
    expect(() => F.avgPool2d(torch.zeros(1, 1, 2, 2), 3)).toThrow(/Kernel size can't be greater than actual input size/);
    expect(() => F.embedding(torch.tensor([1, 2]), torch.zeros(4, 2))).toThrow(/embedding: expected an int32 index tensor, got dtype float32.*Fix/);
    expect(() => new torch.nn.Embedding(4, 2)(int([4]))).toThrow(/index 4 is out of bounds for dimension 0 with size 4/);
    expect(() => F.oneHot(int([0, 3]), 3)).toThrow(/class values must be in \[0, 3\)/);
    expect(() => F.scaledDotProductAttention(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3))).toThrow(/k needs q's last dim \(3\)/);
  });

  it('crossEntropy: target shape, dtype and range; labelSmoothing range', () => {
    const x = torch.zeros(4, 3);
    expect(() => F.crossEntropy(x, int([0, 1]))).toThrow(/expected target of shape \[4\] for logits \[4, 3\], got \[2\]/);
    expect(() => F.crossEntropy(x, torch.zeros(4))).toThrow(/expected target of dtype int32/);
    expect(() => F.crossEntropy(x, int([0, 1, 3, 0]))).toThrow(/target 3 is out of bounds for 3 classes .*Fix: class indices must lie in \[0, 3\) \(or be ignoreIndex -100\)/);
    expect(() => F.crossEntropy(x, int([0, 1, 2, 0]), { labelSmoothing: 2 })).toThrow(/labelSmoothing must be between 0.0 and 1.0/);
    expect(() => F.crossEntropy(torch.zeros(2, 3, 4), int([0, 1]))).toThrow(/expected target of shape \[2, 4\].*Fix: the class dim is dim 1/);
  });
});

describe('values beyond the reference file', () => {
  it('oneHot is int32, crossEntropy with every target ignored is nan (0/0) as PyTorch', async () => {
    const h = F.oneHot(int([2, 0]), 3);
    expect(h.dtype).toBe('int32');
    expect(Array.from(h.toArraySync())).toEqual([0, 0, 1, 1, 0, 0]);
    expect(F.oneHot(int([1, 3])).shape).toEqual([2, 4]);
    expect(Number.isNaN(await F.crossEntropy(torch.zeros(2, 3), int([-100, -100])).item())).toBe(true);
  });
  it('scaledDotProductAttention with isCausal equals the masked softmax written out', () => {
    torch.manualSeed(2);
    const [q, k, v] = [torch.randn(2, 4, 3), torch.randn(2, 4, 3), torch.randn(2, 4, 3)];
    const mask = torch.tril(torch.ones(4, 4)).eq(0);
    const want = q.matmul(k.transpose(-2, -1)).div(Math.sqrt(3)).maskedFill(mask, -Infinity).softmax(-1).matmul(v);
    const got = F.scaledDotProductAttention(q, k, v, { isCausal: true });
    const boolMask = F.scaledDotProductAttention(q, k, v, { attnMask: torch.tril(torch.ones(4, 4)).gt(0) });
    const a = want.toArraySync();
    got.toArraySync().forEach((x, i) => expect(Math.abs(x - a[i])).toBeLessThan(1e-6));
    boolMask.toArraySync().forEach((x, i) => expect(Math.abs(x - a[i])).toBeLessThan(1e-6));
  });
  it('layer init: Conv2d and Embedding draw PyTorch default ranges; names and order', () => {
    torch.manualSeed(0);
    const c = new torch.nn.Conv2d(2, 4, 3);
    expect(c.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([['weight', [4, 2, 3, 3]], ['bias', [4]]]);
    const bound = 1 / Math.sqrt(18);
    expect(Math.max(...Array.from(c.weight.toArraySync(), Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...Array.from(c.weight.toArraySync(), Math.abs))).toBeGreaterThan(0.8 * bound);
    const e = new torch.nn.Embedding(100, 10);
    const ev = Array.from(e.weight.toArraySync());
    const mean = ev.reduce((s, x) => s + x, 0) / ev.length;
    const sd = Math.sqrt(ev.reduce((s, x) => s + (x - mean) ** 2, 0) / ev.length);
    expect(Math.abs(mean)).toBeLessThan(0.1);
    expect(Math.abs(sd - 1)).toBeLessThan(0.1);
    expect(String(c)).toBe('Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1))');
  });
});
