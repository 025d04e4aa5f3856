/**
 * conv2d, maxPool2d and avgPool2d as composites (implicit GEMM): the kernel's k*k strided
 * slices of the padded input are stacked into patches [N*Ho*Wo, C*k*k], so a convolution is
 * one matmul with the weight [O, C*k*k] and a pool is a max or mean over the k*k axis.
 * Gradients, tracing and compiling come from the ops they are made of.
 */
import { full } from '../eager/factories.ts';
import { cat, slice, stack } from '../eager/ops.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';

export type Pair = number | readonly [number, number];

function pair(op: string, what: string, v: Pair | undefined, dflt: [number, number], min: number): [number, number] {
  if (v === undefined) return dflt;
  const p: [number, number] = typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!Array.isArray(v) && typeof v !== 'number') throw new WgtorchError(`${op}: ${what} must be a number or [h, w], got ${String(v)}.`);
  if ((Array.isArray(v) && v.length !== 2) || !p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new WgtorchError(`${op}: ${what} must be ${min > 0 ? 'a positive' : 'a non-negative'} integer or a pair [h, w] of them, got ${JSON.stringify(v)}.`);
  }
  return p;
}

/** Pads dims 2 and 3 of x [N, C, H, W] with `value` (zeros for conv and avg pooling, -inf for max). */
function pad2d(x: Tensor, [ph, pw]: [number, number], value: number): Tensor {
  let y = x;
  const [N, C, H, W] = y.shape;
  if (ph > 0) {
    const rows = full([N, C, ph, W], value, { device: x.device });
    y = cat([rows, y, rows], 2);
  }
  if (pw > 0) {
    const cols = full([N, C, H + 2 * ph, pw], value, { device: x.device });
    y = cat([cols, y, cols], 3);
  }
  return y;
}

interface Windows {
  /** [N, C, k*k, Ho, Wo]: the input under each kernel position, (i, j) row-major on dim 2 */
  patches: Tensor;
  Ho: number;
  Wo: number;
}

function windows(op: string, x: Tensor, [kh, kw]: [number, number], [sh, sw]: [number, number], p: [number, number], padValue: number): Windows {
  const [, , H, W] = x.shape;
  const Hp = H + 2 * p[0];
  const Wp = W + 2 * p[1];
  if (kh > Hp || kw > Wp) {
    throw new WgtorchError(
      `${op}: calculated padded input size per channel: (${Hp} x ${Wp}). Kernel size: (${kh} x ${kw}). Kernel size can't be greater than actual input size (input ${fmtShape(x.shape)}). Fix: use a smaller kernel, more padding or a larger input.`,
    );
  }
  const Ho = Math.floor((Hp - kh) / sh) + 1;
  const Wo = Math.floor((Wp - kw) / sw) + 1;
  const xp = pad2d(x, p, padValue);
  const parts: Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      parts.push(xp.index(null, null, slice(i, i + sh * (Ho - 1) + 1, sh), slice(j, j + sw * (Wo - 1) + 1, sw)));
    }
  }
  return { patches: parts.length === 1 ? parts[0].unsqueeze(2) : stack(parts, 2), Ho, Wo };
}

/** [C, H, W] inputs are one unbatched image, as in PyTorch. */
function batched(op: string, x: Tensor): { x4: Tensor; unbatched: boolean } {
  if (x.dim() === 4) return { x4: x, unbatched: false };
  if (x.dim() === 3) return { x4: x.unsqueeze(0), unbatched: true };
  throw new WgtorchError(`${op}: expected 3D (unbatched) or 4D (batched) input [N, C, H, W], but got input of size ${fmtShape(x.shape)}.`);
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
}

/** 2-D convolution (cross-correlation, as PyTorch): x [N, C, H, W], weight [O, C, kh, kw], bias [O]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  checkOptions('conv2d', opts, ['stride', 'padding']);
  const stride = pair('conv2d', 'stride', opts.stride, [1, 1], 1);
  const padding = pair('conv2d', 'padding', opts.padding, [0, 0], 0);
  if (weight.dim() !== 4) {
    throw new WgtorchError(`conv2d: expected a 4-D weight [outChannels, inChannels, kH, kW], got ${fmtShape(weight.shape)}.`);
  }
  const { x4, unbatched } = batched('conv2d', x);
  const [O, Cw, kh, kw] = weight.shape;
  const [N, C] = x4.shape;
  if (C !== Cw) {
    throw new WgtorchError(
      `conv2d: given groups=1, weight of size ${fmtShape(weight.shape)}, expected input${fmtShape(x.shape)} to have ${Cw} channels, but got ${C} channels instead.` +
        ` Fix: the input's dim ${unbatched ? 0 : 1} must equal the layer's inChannels (${Cw}).`,
    );
  }
  if (bias && (bias.dim() !== 1 || bias.shape[0] !== O)) {
    throw new WgtorchError(`conv2d: expected bias of shape [${O}] (outChannels), got ${fmtShape(bias.shape)}.`);
  }
  const { patches, Ho, Wo } = windows('conv2d', x4, [kh, kw], stride, padding, 0);
  const K = C * kh * kw;
  const L = Ho * Wo;
  // [N, C, kk, Ho, Wo] -> [N, C*kk, L] -> [N*L, C*kk]: one matmul with the weight [O, C*kk]
  const cols = patches.reshape([N, K, L]).permute([0, 2, 1]).reshape([N * L, K]);
  let y = cols.mm(weight.reshape([O, K]).t());
  if (bias) y = y.add(bias);
  const out = y.reshape([N, Ho, Wo, O]).permute([0, 3, 1, 2]);
  return unbatched ? out.squeeze(0) : out;
}

export interface Pool2dOptions {
  /** defaults to the kernel size, as PyTorch */
  stride?: Pair;
  padding?: Pair;
}

function pool(op: string, x: Tensor, kernelSize: Pair, opts: Pool2dOptions, kind: 'max' | 'avg'): Tensor {
  checkOptions(op, opts, ['stride', 'padding']);
  const k = pair(op, 'kernelSize', kernelSize, [0, 0], 1);
  const stride = pair(op, 'stride', opts.stride ?? undefined, k, 1);
  const padding = pair(op, 'padding', opts.padding, [0, 0], 0);
  if (padding[0] * 2 > k[0] || padding[1] * 2 > k[1]) {
    throw new WgtorchError(`${op}: pad should be at most half of effective kernel size, but got pad=${JSON.stringify(opts.padding)} and kernelSize=${JSON.stringify(kernelSize)}.`);
  }
  const { x4, unbatched } = batched(op, x);
  const [N, C] = x4.shape;
  const { patches, Ho, Wo } = windows(op, x4, k, stride, padding, kind === 'max' ? -Infinity : 0);
  // max(dim) sends the gradient to the first maximum of each window, as PyTorch's max_pool2d
  const out = kind === 'max' ? patches.max(2).values : patches.mean(2);
  const y = out.reshape([N, C, Ho, Wo]);
  return unbatched ? y.squeeze(0) : y;
}

export function maxPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return pool('maxPool2d', x, kernelSize, opts, 'max');
}
/** Average pooling; padded zeros count in the average (PyTorch's countIncludePad default). */
export function avgPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return pool('avgPool2d', x, kernelSize, opts, 'avg');
}
