/**
 * Finite-difference gradient checks, driven by the op registry: every registry op with a
 * gradient rule has an entry in PRIMITIVES below (a test fails when a new op has none),
 * and every op without one is listed in NOT_DIFFERENTIABLE. Composites are checked too.
 *
 * Tolerance: |analytic - numeric| <= ATOL + RTOL * |numeric| per element, with central
 * differences (steps 1e-2 and 5e-3, Richardson-extrapolated) on inputs of magnitude ~1
 * evaluated in float32. The measured
 * worst errors over all cases are printed with WGTORCH_GRADCHECK_REPORT=1; the tolerance
 * sits a few times above them, and every case also checks that the analytic gradient
 * scaled by 1.1 fails it (so the tolerance is not too loose to see a wrong rule).
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { apply } from '../src/eager/dispatch.ts';
import { allOps, getOp, type GradRule, type GT } from '../src/ir/registry.ts';
import { gradcheck, leafFactory, maxAbsErr, worstRatio, type Gen } from './helpers/gradcheck.ts';

// Measured (Richardson-extrapolated central differences, h = 1e-2 and 5e-3, float32):
// median case error 8e-6, worst 2e-4 (mseLoss 'none', |g| ~ 6), worst ratio to this
// tolerance ~0.28 (logSoftmax). A 10% wrong gradient fails it in every case.
const ATOL = 3e-4;
const RTOL = 3e-4;
const F = torch.nn.functional;
type T = torch.Tensor;
type Leaf = (shape: number[], gen?: Gen, requiresGrad?: boolean) => T;

interface Case {
  label: string;
  inputs: (leaf: Leaf) => T[];
  fn: (...xs: T[]) => T;
  h?: number;
}
const c = (label: string, inputs: Case['inputs'], fn: Case['fn'], h?: number): Case => ({ label, inputs, fn, h });

/** Registry op -> cases that exercise it (each case's graph must contain the op's backward node). */
const PRIMITIVES: Record<string, Case[]> = {
  add: [
    c('[3,4] + [3,4]', (p) => [p([3, 4]), p([3, 4])], (a, b) => a.add(b)),
    c('[3,4] + [4] (broadcast)', (p) => [p([3, 4]), p([4])], (a, b) => a.add(b)),
    c('[3,1] + [1,4] (both broadcast)', (p) => [p([3, 1]), p([1, 4])], (a, b) => a.add(b)),
    c('[2,3] + scalar', (p) => [p([2, 3])], (a) => a.add(0.7)),
    c('[] + [2,3] (0-d operand)', (p) => [p([]), p([2, 3])], (a, b) => torch.add(a, b)),
    c('add with alpha', (p) => [p([2, 3]), p([3])], (a, b) => a.add(b, { alpha: -2.5 })),
  ],
  sub: [
    c('[3,4] - [4]', (p) => [p([3, 4]), p([4])], (a, b) => a.sub(b)),
    c('[3,1] - [3,4]', (p) => [p([3, 1]), p([3, 4])], (a, b) => a.sub(b)),
    c('scalar - x (scalar first)', (p) => [p([2, 3])], (a) => apply('sub', [2, a])),
    c('x - scalar', (p) => [p([5])], (a) => torch.sub(a, 1.5)),
  ],
  mul: [
    c('[3,4] * [3,4]', (p) => [p([3, 4]), p([3, 4])], (a, b) => a.mul(b)),
    c('[3,4] * [3,1] (broadcast)', (p) => [p([3, 4]), p([3, 1])], (a, b) => a.mul(b)),
    c('[2,1,3] * [4,1] (rank 3 broadcast)', (p) => [p([2, 1, 3]), p([4, 1])], (a, b) => a.mul(b)),
    c('x * scalar', (p) => [p([3, 2])], (a) => a.mul(-1.7)),
    c('x * x (same tensor twice)', (p) => [p([4])], (a) => a.mul(a)),
  ],
  div: [
    c('[3,4] / [3,4]', (p) => [p([3, 4]), p([3, 4], 'positive')], (a, b) => a.div(b)),
    c('[3,4] / [4] (broadcast)', (p) => [p([3, 4]), p([4], 'positive')], (a, b) => a.div(b)),
    c('[3,4] / negative [3,1]', (p) => [p([3, 4]), p([3, 1], 'positive')], (a, b) => a.div(b.neg())),
    c('x / scalar', (p) => [p([2, 3])], (a) => a.div(3)),
    c('scalar / x (scalar first)', (p) => [p([2, 3], 'positive')], (a) => apply('div', [2, a])),
  ],
  neg: [c('-x', (p) => [p([3, 4])], (a) => a.neg())],
  exp: [c('exp', (p) => [p([3, 4])], (a) => a.exp())],
  log: [c('log of positive', (p) => [p([3, 4], 'positive')], (a) => a.log())],
  sqrt: [c('sqrt of positive', (p) => [p([3, 4], 'positive')], (a) => a.sqrt())],
  abs: [c('abs away from 0', (p) => [p([3, 4], 'signed')], (a) => a.abs())],
  tanh: [c('tanh', (p) => [p([3, 4])], (a) => a.tanh())],
  sigmoid: [c('sigmoid', (p) => [p([3, 4])], (a) => a.sigmoid())],
  relu: [c('relu away from 0', (p) => [p([3, 4], 'signed')], (a) => a.relu())],
  pow: [
    c('pow 2', (p) => [p([3, 4])], (a) => a.pow(2)),
    c('pow 3 (negative bases)', (p) => [p([3, 4])], (a) => a.pow(3)),
    c('pow 5 (odd, beyond unrolling)', (p) => [p([6])], (a) => a.pow(5)),
    c('pow 6', (p) => [p([6])], (a) => a.pow(6)),
    c('pow -1', (p) => [p([6], 'positive')], (a) => a.pow(-1)),
    c('pow -2 (negative bases)', (p) => [p([6], { awayFrom: [0], margin: 0.5 })], (a) => a.pow(-2)),
    c('pow 0.5', (p) => [p([6], 'positive')], (a) => a.pow(0.5)),
    c('pow 2.5', (p) => [p([6], 'positive')], (a) => a.pow(2.5)),
    c('pow 1', (p) => [p([6])], (a) => a.pow(1)),
    c('pow 0 (zero gradient)', (p) => [p([6])], (a) => a.pow(0)),
  ],
  clamp: [
    c('clamp min 0', (p) => [p([3, 4], { awayFrom: [0] })], (a) => a.clamp({ min: 0 })),
    c('clamp max 0.5', (p) => [p([3, 4], { awayFrom: [0.5] })], (a) => a.clamp({ max: 0.5 })),
    c('clamp(-0.5, 0.7)', (p) => [p([4, 4], { awayFrom: [-0.5, 0.7] })], (a) => a.clamp(-0.5, 0.7)),
  ],
  copy: [c('clone', (p) => [p([3, 4])], (a) => a.clone().mul(a))],
  cast: [c('cast to float32', (p) => [p([3, 4])], (a) => apply('cast', [a], { dtype: 'float32' }).mul(a))],
  where: [
    c('where(cond, a, b)', (p) => [p([3, 4]), p([3, 4]), p([3, 4])], (k, a, b) => torch.where(k.gt(0), a, b)),
    c('where with broadcast [3,1] cond, [4] branch', (p) => [p([3, 1]), p([3, 4]), p([4])], (k, a, b) => torch.where(k.gt(0), a, b)),
    c('where with a scalar branch', (p) => [p([3, 4]), p([3, 4])], (k, a) => torch.where(k.lt(0), 2, a)),
    c('x.where(cond, other)', (p) => [p([2, 5]), p([2, 5])], (a, b) => a.where(a.gt(0), b)),
    c('maskedFill', (p) => [p([2, 5])], (a) => a.maskedFill(a.lt(0), 3).mul(a)),
  ],
  sum: [
    c('sum all', (p) => [p([3, 4])], (a) => a.sum()),
    c('sum dim 0', (p) => [p([3, 4])], (a) => a.sum(0)),
    c('sum dim -1 keepdim', (p) => [p([3, 4])], (a) => a.sum(-1, true)),
    c('sum dims [0,2] of rank 3', (p) => [p([2, 3, 4])], (a) => a.sum([0, 2])),
    c('sum dims [0,2] keepdim of rank 3', (p) => [p([2, 3, 4])], (a) => a.sum([0, 2], true)),
    c('sum dim 1 of rank 3, keepdim', (p) => [p([2, 3, 2])], (a) => a.sum(1, true)),
    c('sum of a 0-d tensor', (p) => [p([])], (a) => a.sum().mul(a)),
  ],
  max: [
    c('max() over all (no ties)', (p) => [p([3, 4], 'distinct')], (a) => a.max()),
    c('max(dim 1).values', (p) => [p([3, 4], 'distinct')], (a) => a.max(1).values),
    c('max(dim 0, keepdim).values', (p) => [p([3, 4], 'distinct')], (a) => a.max(0, true).values),
    c('amax dims [0,2] of rank 3', (p) => [p([2, 3, 4], 'distinct')], (a) => a.amax([0, 2])),
    c('amax dim -1 keepdim', (p) => [p([2, 3, 4], 'distinct')], (a) => a.amax(-1, true)),
    c('torch.max(a, b) elementwise (through where)', (p) => [p([3, 4], 'distinct'), p([3, 4], 'distinct')], (a, b) => torch.max(a, b).mul(a.amax())),
  ],
  min: [
    c('amin over all (no ties)', (p) => [p([3, 4], 'distinct')], (a) => a.amin()),
    c('amin dims [0,2] keepdim of rank 3', (p) => [p([2, 3, 4], 'distinct')], (a) => a.amin([0, 2], true)),
  ],
  prod: [
    c('prod over all', (p) => [p([2, 3])], (a) => a.prod()),
    c('prod dim 1 keepdim', (p) => [p([3, 4])], (a) => a.prod(1, true)),
    c('prod dims [0,2] of rank 3', (p) => [p([2, 3, 2])], (a) => a.prod([0, 2])),
  ],
  mm: [
    c('mm [3,4] x [4,2]', (p) => [p([3, 4]), p([4, 2])], (a, b) => a.mm(b)),
    c('mm [1,5] x [5,1]', (p) => [p([1, 5]), p([5, 1])], (a, b) => a.mm(b)),
    c('mm with a transposed operand', (p) => [p([3, 4]), p([2, 4])], (a, b) => a.mm(b.t())),
  ],
  bmm: [
    c('bmm [2,3,4] x [2,4,2]', (p) => [p([2, 3, 4]), p([2, 4, 2])], (a, b) => a.bmm(b)),
    c('matmul with broadcast batch dims [2,1,3,4] x [1,3,4,2]', (p) => [p([2, 1, 3, 4]), p([1, 3, 4, 2])], (a, b) => a.matmul(b)),
    c('matmul of transposed batched operands', (p) => [p([2, 4, 3]), p([2, 2, 4])], (a, b) => a.transpose(-2, -1).matmul(b.transpose(1, 2))),
    c('matmul [3,4] x [2,4,2] (the matrix read for every batch)', (p) => [p([3, 4]), p([2, 4, 2])], (a, b) => a.matmul(b)),
  ],
  reshape: [
    c('reshape [3,4] -> [2,6]', (p) => [p([3, 4])], (a) => a.reshape(2, 6).mul(torch.arange(6).float())),
    c('view [-1] and unsqueeze/squeeze/flatten', (p) => [p([2, 3, 2])], (a) => a.flatten(1).unsqueeze(0).squeeze(0).view(-1).mul(a.reshape([12]))),
  ],
  permute: [
    c('t()', (p) => [p([3, 4])], (a) => a.t().mul(torch.arange(3).float())),
    c('permute [2,0,1]', (p) => [p([2, 3, 4])], (a) => a.permute(2, 0, 1).mul(torch.arange(3).float())),
    c('transpose(0, 2)', (p) => [p([2, 3, 4])], (a) => a.transpose(0, 2).mul(torch.arange(2).float())),
  ],
  expand: [
    c('expand [3,1] -> [3,4]', (p) => [p([3, 1])], (a) => a.expand(3, 4)),
    c('expand [4] -> [2,3,4]', (p) => [p([4])], (a) => a.expand([2, 3, 4])),
    c('expand [1,3,1] -> [2,3,4] with -1', (p) => [p([1, 3, 1])], (a) => a.expand(2, -1, 4)),
    c('expandAs then mul', (p) => [p([1, 4]), p([3, 4])], (a, b) => a.expandAs(b).mul(b)),
  ],
  sin: [c('sin', (p) => [p([3, 4])], (a) => a.sin()), c('torch.sin of a rank 3 tensor', (p) => [p([2, 3, 2])], (a) => torch.sin(a.mul(3)))],
  cos: [c('cos', (p) => [p([3, 4])], (a) => a.cos()), c('torch.cos of a permuted input', (p) => [p([2, 5])], (a) => torch.cos(a.t().mul(2)))],
  erf: [c('erf', (p) => [p([3, 4])], (a) => a.erf()), c('erf of larger values', (p) => [p([6])], (a) => a.mul(2).erf())],
  powt: [
    c('positive base ^ tensor exponent', (p) => [p([3, 4], 'positive'), p([3, 4])], (a, b) => a.pow(b)),
    c('broadcast exponent [4] over [3,4]', (p) => [p([3, 4], 'positive'), p([4])], (a, b) => a.add(0.5).pow(b.add(2))),
    c('negative base, integer exponents (gradient to the base)', (p) => [p([6], 'signed')], (a) => a.pow(torch.tensor([1, 2, 3, -1, 2, 3]))),
    c('number base: torch.pow(2, x)', (p) => [p([5])], (b) => torch.pow(2, b)),
  ],
  slice: [
    c('narrow(1, 1, 2)', (p) => [p([3, 4])], (a) => a.narrow(1, 1, 2)),
    c('index with a step: a[::2, 1:]', (p) => [p([5, 4])], (a) => a.index(torch.slice(null, null, 2), torch.slice(1))),
    c('select(0, -1) of rank 3', (p) => [p([2, 3, 4])], (a) => a.select(0, -1)),
    c('split into uneven parts, re-joined', (p) => [p([3, 5])], (a) => torch.cat(a.split(2, 1).reverse(), 1)),
  ],
  sliceScatter: [
    c('cat along dim 0', (p) => [p([2, 3]), p([3, 3])], (a, b) => torch.cat([a, b], 0)),
    c('cat along dim -1, three parts', (p) => [p([2, 1]), p([2, 3]), p([2, 2])], (a, b, d) => torch.cat([a, b, d], -1)),
    c('stack dim 1', (p) => [p([3, 4]), p([3, 4])], (a, b) => torch.stack([a, b], 1)),
    c('sliceScatter as an op of its own: gradients to the base and the source', (p) => [p([4, 5]), p([2, 2])], (b, s) => b._sliceScatter(s, [1, 0], [2, 3])),
  ],
  gather: [
    c('gather dim 1', (p) => [p([3, 4]), torch.tensor([[0, 3], [1, 1], [2, 0]], { dtype: 'int32' })], (a, i) => a.gather(1, i)),
    c('gather dim 0 with repeats', (p) => [p([3, 4]), torch.tensor([[2, 0, 2, 2]], { dtype: 'int32' })], (a, i) => torch.gather(a, 0, i)),
    c('indexSelect(0) with repeats', (p) => [p([4, 3]), torch.tensor([3, 0, 3], { dtype: 'int32' })], (a, i) => a.indexSelect(0, i)),
    c('index with an int32 tensor (embedding lookup, rows repeat)', (p) => [p([6, 4]), torch.tensor([[1, 2], [5, 0], [1, 1]], { dtype: 'int32' })], (e, x) => e.index(x)),
    c('index with two tensors and a slice', (p) => [p([3, 4, 5]), torch.tensor([0, 2, -1], { dtype: 'int32' }), torch.tensor([1, 1, 3], { dtype: 'int32' })], (a, i, j) => a.index(i, torch.slice(1, 3), j)),
  ],
  // a convolution's patch matrix and its gradient; conv2d's own rules are checked in test/nn-gradcheck.test.ts
  im2col: [
    c('im2col kernel [3, 2] stride [2, 1] padding [1, 0] dilation [1, 2] (its gradient is col2im)', (p) => [p([2, 2, 5, 5])], (x) =>
      x._im2col({ kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], out: [3, 3], transposed: false, fill: 'zero' }),
    ),
  ],
  col2im: [
    c('col2im of overlapping windows (its gradient is im2col)', (p) => [p([18, 12])], (g) =>
      g._col2im({ kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], out: [3, 3], transposed: false, fill: 'zero', shape: [2, 2, 5, 5] }),
    ),
  ],
  // a max pool's gradient (g at each window's argmax, summed over overlapping windows); its gradient reads im2col at the argmax
  col2imAt: [
    c('col2imAt of overlapping windows, several argmaxes landing on one element', (p) => [p([2, 2, 3, 3])], (g) =>
      apply('col2imAt', [g, torch.tensor(Array.from({ length: 36 }, (_, k) => (k * 5) % 6), { shape: [2, 2, 3, 3], dtype: 'int32' })], {
        kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], out: [3, 3], transposed: false, fill: 'zero', shape: [2, 2, 5, 5],
      }),
    ),
  ],
  scatterAdd: [
    c('scatterAdd dim 1 with repeats (the gradient of gather, as an op of its own)', (p) => [p([3, 2]), torch.tensor([[0, 3], [1, 1], [2, 0]], { dtype: 'int32' })], (g, i) => g._scatterAdd(1, i, [3, 4])),
    c('scatterAdd dim 0 into a larger source', (p) => [p([2, 3]), torch.tensor([[2, 0, 2], [2, 1, 0]], { dtype: 'int32' })], (g, i) => g._scatterAdd(0, i, [4, 5])),
  ],
};

/** Registry ops without a gradient rule: comparisons, argmax, argmin, sign and sources. */
const NOT_DIFFERENTIABLE = ['sign', 'lt', 'le', 'gt', 'ge', 'eq', 'ne', 'argmax', 'argmin', 'full', 'arange', 'check_index'];

/** Composites built from registry ops. */
const COMPOSITES: Case[] = [
  c('softmax dim 1', (p) => [p([3, 4])], (a) => a.softmax(1)),
  c('softmax dim 0', (p) => [p([3, 4])], (a) => torch.softmax(a, 0)),
  c('logSoftmax dim -1', (p) => [p([3, 4])], (a) => a.logSoftmax(-1)),
  c('logSoftmax of a rank 3 tensor, dim 1', (p) => [p([2, 3, 2])], (a) => a.logSoftmax(1)),
  c('logsumexp dim 1', (p) => [p([3, 4])], (a) => a.logsumexp(1)),
  c('logsumexp dims [0,1] keepdim', (p) => [p([3, 4])], (a) => torch.logsumexp(a, [0, 1], true)),
  c('mean all', (p) => [p([3, 4])], (a) => a.mean()),
  c('mean dim 0 keepdim', (p) => [p([3, 4])], (a) => a.mean(0, true)),
  c('mean dims [1,2]', (p) => [p([2, 3, 4])], (a) => torch.mean(a, [1, 2])),
  c('matmul 1-D . 1-D', (p) => [p([5]), p([5])], (a, b) => a.matmul(b)),
  c('matmul 1-D x 2-D', (p) => [p([4]), p([4, 3])], (a, b) => a.matmul(b)),
  c('matmul 2-D x 1-D', (p) => [p([3, 4]), p([4])], (a, b) => torch.matmul(a, b)),
  c('matmul 2-D x 2-D', (p) => [p([3, 4]), p([4, 2])], (a, b) => a.matmul(b)),
  c('matmul batched x 2-D', (p) => [p([2, 3, 4]), p([4, 2])], (a, b) => a.matmul(b)),
  c('matmul batched x batched (broadcast batch)', (p) => [p([2, 1, 3, 4]), p([3, 4, 2])], (a, b) => a.matmul(b)),
  c('mseLoss mean', (p) => [p([3, 4]), p([3, 4])], (a, b) => F.mseLoss(a, b)),
  c('mseLoss sum', (p) => [p([3, 4]), p([3, 4])], (a, b) => F.mseLoss(a, b, { reduction: 'sum' })),
  c('mseLoss none', (p) => [p([3, 4]), p([3, 4])], (a, b) => F.mseLoss(a, b, { reduction: 'none' })),
  // targets = input - d with |d| >= 0.1, so |input - target| stays away from the kink at 0
  c('l1Loss mean', (p) => { const a = p([3, 4]); return [a, a.detach().sub(p([3, 4], 'signed', false))]; }, (a, t) => F.l1Loss(a, t)),
  c('l1Loss sum, gradient to both', (p) => { const a = p([3, 4]); return [a, a.detach().sub(p([3, 4], 'signed', false)).requiresGrad_()]; }, (a, t) => F.l1Loss(a, t, { reduction: 'sum' })),
  c(
    'crossEntropy with int targets',
    (p) => [p([4, 5]), torch.tensor([0, 4, 2, 2], { dtype: 'int32' })],
    (a, t) => F.crossEntropy(a, t),
  ),
  c(
    'crossEntropy reduction none',
    (p) => [p([3, 4]), torch.tensor([3, 0, 1], { dtype: 'int32' })],
    (a, t) => F.crossEntropy(a, t, { reduction: 'none' }),
  ),
  c('crossEntropy with probability targets', (p) => [p([3, 4]), p([3, 4])], (a, q) => F.crossEntropy(a, q.softmax(1))),
  c('linear with bias', (p) => [p([3, 4]), p([2, 4]), p([2])], (x, w, b) => F.linear(x, w, b)),
  c('linear without bias, batched input', (p) => [p([2, 3, 4]), p([2, 4])], (x, w) => F.linear(x, w)),
  c('min() over all (no ties)', (p) => [p([3, 4], 'distinct')], (a) => a.min()),
  c('min(dim 1).values', (p) => [p([3, 4], 'distinct')], (a) => a.min(1).values),
  c('torch.min(a, b) elementwise', (p) => [p([3, 4], 'distinct'), p([3, 4], 'distinct')], (a, b) => torch.min(a, b)),
  c('gelu (exact, erf)', (p) => [p([3, 4])], (a) => a.gelu()),
  c('gelu tanh approximation', (p) => [p([3, 4])], (a) => a.gelu({ approximate: 'tanh' })),
  c('silu', (p) => [p([3, 4])], (a) => torch.silu(a)),
  c('var dim 1', (p) => [p([3, 4])], (a) => a.var(1)),
  c('var all, correction 0', (p) => [p([3, 4])], (a) => a.var({ correction: 0 })),
  c('std dim 0 keepdim', (p) => [p([3, 4])], (a) => a.std(0, { keepdim: true })),
  c('chunk then multiply the halves', (p) => [p([4, 5])], (a) => { const [x, y] = a.chunk(2, 0); return x.mul(y); }),
  c('tril and triu(1)', (p) => [p([4, 5])], (a) => torch.tril(a).add(torch.triu(a, 1).mul(2))),
  c('bmm', (p) => [p([2, 3, 4]), p([2, 4, 2])], (a, b) => torch.bmm(a, b)),
  c('matmul 3-D with transpose(-2, -1)', (p) => [p([2, 3, 4]), p([2, 3, 4])], (q, k) => q.matmul(k.transpose(-2, -1))),
  c('softmax(-1) of rank 3', (p) => [p([2, 3, 4])], (a) => a.softmax(-1)),
  c('causal attention', (p) => [p([1, 2, 4, 3]), p([1, 2, 4, 3]), p([1, 2, 4, 3])], (q, k, v) => {
    const mask = torch.tril(torch.ones(4, 4)).eq(0);
    return q.matmul(k.transpose(-2, -1)).div(Math.sqrt(3)).maskedFill(mask, -Infinity).softmax(-1).matmul(v);
  }),
  c('relu via clamp chain (two-layer net)', (p) => [p([3, 4]), p([4, 5], 'signed'), p([5, 2])], (x, w1, w2) => x.mm(w1).clamp({ min: 0 }).mm(w2)),
];

const backwardName = (op: string) => op[0].toUpperCase() + op.slice(1) + 'Backward';
const report = process.env.WGTORCH_GRADCHECK_REPORT === '1';
const measured: { label: string; abs: number; rel: number; maxGrad: number; ratio: number }[] = [];

function runCase(cs: Case, seed: number, op?: string) {
  const leaf = leafFactory(seed);
  const inputs = cs.inputs(leaf);
  const res = gradcheck(cs.fn, inputs, { h: cs.h, seed: seed + 1 });
  if (op) expect(res.nodeNames, `the graph of '${cs.label}' uses op '${op}'`).toContain(backwardName(op));
  expect(res.analytic.length).toBeGreaterThan(0);
  const err = maxAbsErr(res);
  const ratio = worstRatio(res, ATOL, RTOL);
  measured.push({ label: `${op ?? 'composite'}: ${cs.label}`, ...err, ratio });
  expect(ratio, `'${cs.label}': worst |analytic - numeric| is ${err.abs.toExponential(2)} (ratio to tolerance ${ratio.toFixed(3)})`).toBeLessThanOrEqual(1);
  // A rule off by 10% must fail the same tolerance (unless the gradient is identically zero).
  if (err.maxGrad > 0) expect(worstRatio(res, ATOL, RTOL, 1.1), `'${cs.label}' would not catch a 10% error`).toBeGreaterThan(1);
  else expect(res.analytic.every((a) => a.every((v) => v === 0)), 'a zero numeric gradient needs a zero analytic one').toBe(true);
}

describe('gradcheck: the registry is covered', () => {
  const ops = allOps();
  it('every differentiable registry op has gradcheck cases', () => {
    const missing = ops.filter((o) => o.grad && !(PRIMITIVES[o.name]?.length > 0)).map((o) => o.name);
    expect(missing, 'registry ops with a gradient rule but no gradcheck case in PRIMITIVES').toEqual([]);
  });
  it('the non-differentiable ops are exactly those without a gradient rule', () => {
    const noGrad = ops.filter((o) => !o.grad).map((o) => o.name).sort();
    expect(noGrad).toEqual([...NOT_DIFFERENTIABLE].sort());
  });
  it('the table names only registry ops', () => {
    const names = new Set(ops.map((o) => o.name));
    expect(Object.keys(PRIMITIVES).filter((n) => !names.has(n))).toEqual([]);
  });
  it('non-differentiable ops produce results without a gradFn', () => {
    const x = torch.tensor([[0.5, -1, 2]], { requiresGrad: true });
    for (const r of [x.sign(), x.lt(0), x.le(0), x.gt(0), x.ge(0), x.eq(0.5), x.ne(0.5), x.argmax(1)]) {
      expect(r.gradFn).toBeNull();
      expect(r.requiresGrad).toBe(false);
    }
  });
});

describe('gradcheck: registry primitives', () => {
  let seed = 100;
  for (const [op, cases] of Object.entries(PRIMITIVES)) {
    for (const cs of cases) {
      const s = (seed += 10);
      it(`${op}: ${cs.label}`, () => runCase(cs, s, op));
    }
  }
});

describe('gradcheck: composites', () => {
  let seed = 5000;
  for (const cs of COMPOSITES) {
    const s = (seed += 10);
    it(cs.label, () => runCase(cs, s));
  }
  it.runIf(report)('report measured errors', () => {
    measured.sort((a, b) => b.ratio - a.ratio);
    const line = (m: (typeof measured)[number]) =>
      `ratio ${m.ratio.toFixed(3)} abs ${m.abs.toExponential(2)} rel ${m.rel.toExponential(2)} |g|max ${m.maxGrad.toFixed(2)}  ${m.label}`;
    const abs = [...measured].sort((a, b) => b.abs - a.abs);
    console.log(`${measured.length} cases; median abs error ${abs[abs.length >> 1].abs.toExponential(2)}\n` + measured.slice(0, 12).map(line).join('\n'));
  });
});

describe('gradcheck: the checker itself', () => {
  it('catches a registry gradient rule that is off by 10%', () => {
    for (const name of ['tanh', 'mm', 'sum']) {
      const op = getOp(name) as { grad?: GradRule };
      const rule = op.grad!;
      op.grad = (g, ctx) => rule(g, ctx).map((x) => (x ? (x.mul(1.1) as GT) : x));
      try {
        const p = leafFactory(9);
        const res = name === 'mm' ? gradcheck((a, b) => a.mm(b), [p([3, 4]), p([4, 2])]) : gradcheck((a) => (name === 'tanh' ? a.tanh() : a.sum(1)), [p([3, 4])]);
        expect(worstRatio(res, ATOL, RTOL), name).toBeGreaterThan(1);
      } finally {
        op.grad = rule;
      }
    }
  });

  it('catches a wrong gradient rule in a custom Function', () => {
    // d/dx of x^2 is 2x; this Function claims 2.2x.
    class Wrong extends torch.autograd.Function {
      static forward(ctx: torch.autograd.Context, x: T) {
        ctx.saveForBackward(x);
        return x.mul(x);
      }
      static backward(ctx: torch.autograd.Context, g: T) {
        const [x] = ctx.savedTensors;
        return g.mul(x).mul(2.2);
      }
    }
    const res = gradcheck((x) => Wrong.apply(x), [leafFactory(7)([3, 4])]);
    expect(worstRatio(res, ATOL, RTOL)).toBeGreaterThan(1);
  });
});
