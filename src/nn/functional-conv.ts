/**
 * conv2d as an implicit GEMM: the patch matrix [N*Ho*Wo, C*kh*kw] is the `im2col` index op
 * (its map in src/ir/window.ts) times the weight [O, C*kh*kw]; its gradients are matmuls over
 * the same map (see Convolution). The compiler reads each im2col inside its matmul's operand
 * loads, so a compiled convolution never writes the patch matrix; eager mode computes it.
 * maxPool2d and avgPool2d are a max or mean over the columns of the same im2col (every
 * channel an image of its own, padding read as -inf or 0); avgPool2d's gradient goes back
 * through im2col's (col2im, summed from the destination side), maxPool2d's through col2imAt
 * (g at each window's argmax, summed from the destination side: no mask, no patch matrix).
 */
import { apply } from '../eager/dispatch.ts';
import { AutogradFunction, type Context } from '../eager/function.ts';
import { checkOptions } from '../eager/options.ts';
import { isGradEnabled } from '../eager/grad-mode.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Attrs } from '../ir/registry.ts';
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

/** [C, H, W] inputs are one unbatched image, as in PyTorch. */
function batched(op: string, x: Tensor): { x4: Tensor; unbatched: boolean } {
  if (x.dim() === 4) return { x4: x, unbatched: false };
  if (x.dim() === 3) return { x4: x.unsqueeze(0), unbatched: true };
  throw new WgtorchError(`${op}: expected 3D (unbatched) or 4D (batched) input [N, C, H, W], but got input of size ${fmtShape(x.shape)}.`);
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}

/** What a convolution's im2col reads: kernel, stride, padding, dilation, and the output grid. */
interface Geometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  /** input [H, W] and output [Ho, Wo] sizes */
  input: [number, number];
  output: [number, number];
}

/** The patch matrix of x under the convolution's map: im2col's forward map, or its transpose (read from the output side). */
function patches(x: Tensor, geo: Geometry, transposed: boolean): Tensor {
  const { kernel, stride, padding, dilation } = geo;
  return apply('im2col', [x], { kernel, stride, padding, dilation, out: transposed ? geo.input : geo.output, transposed });
}

/**
 * conv2d as one matmul of the patch matrix (im2col) with the weight, its gradients as two
 * more over the same map: the weight's is gy^T @ im2col(x), the input's a transposed
 * convolution, im2col of gy read backwards @ the weight, so no col2im sum is needed.
 * Compiled, each im2col is read inside its matmul's operand loads and never written.
 */
class Convolution extends AutogradFunction {
  static forward(ctx: Context, x: Tensor, weight: Tensor, bias: Tensor | number, geo: Geometry): Tensor {
    const [N] = x.shape;
    const [O] = weight.shape;
    const [Ho, Wo] = geo.output;
    ctx.saveForBackward(x, weight);
    ctx.geo = geo;
    let y = patches(x, geo, false).mm(weight.reshape([O, -1]).t());
    if (typeof bias !== 'number') y = y.add(bias);
    return y.reshape([N, Ho, Wo, O]).permute([0, 3, 1, 2]);
  }
  static backward(ctx: Context, g: Tensor): (Tensor | null)[] {
    const [x, weight] = ctx.savedTensors;
    const geo = ctx.geo as Geometry;
    const [N, C] = x.shape;
    const [O] = weight.shape;
    const [H, W] = geo.input;
    const [needX, needW, needB] = ctx.needsInputGrad;
    const gm = needW ? g.permute([0, 2, 3, 1]).reshape([-1, O]) : null;
    const gw = gm ? gm.t().mm(patches(x, geo, false)).reshape(weight.shape) : null;
    const gb = needB ? g.sum([0, 2, 3]) : null;
    // W as [(o, i, j), c]: the rows of the transposed map's columns
    const gx = needX
      ? patches(g, geo, true).mm(weight.permute([0, 2, 3, 1]).reshape([-1, C])).reshape([N, H, W, C]).permute([0, 3, 1, 2])
      : null;
    return [gx, gw, gb, null];
  }
}

/** 2-D convolution (cross-correlation, as PyTorch): x [N, C, H, W], weight [O, C, kh, kw], bias [O]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: Conv2dOptions = {}): Tensor {
  checkOptions('conv2d', opts, ['stride', 'padding', 'dilation']);
  const stride = pair('conv2d', 'stride', opts.stride, [1, 1], 1);
  const padding = pair('conv2d', 'padding', opts.padding, [0, 0], 0);
  const dilation = pair('conv2d', 'dilation', opts.dilation, [1, 1], 1);
  if (weight.dim() !== 4) {
    throw new WgtorchError(`conv2d: expected a 4-D weight [outChannels, inChannels, kH, kW], got ${fmtShape(weight.shape)}.`);
  }
  const { x4, unbatched } = batched('conv2d', x);
  const [O, Cw, kh, kw] = weight.shape;
  const [, C, H, W] = x4.shape;
  if (C !== Cw) {
    throw new WgtorchError(
      `conv2d: given groups=1, weight of size ${fmtShape(weight.shape)}, expected input${fmtShape(x.shape)} to have ${Cw} channels, but got ${C} channels instead.` +
        ` Fix: the input's dim ${unbatched ? 0 : 1} must equal the layer's inChannels (${Cw}).`,
    );
  }
  if (bias && (bias.dim() !== 1 || bias.shape[0] !== O)) {
    throw new WgtorchError(`conv2d: expected bias of shape [${O}] (outChannels), got ${fmtShape(bias.shape)}.`);
  }
  const Hp = H + 2 * padding[0];
  const Wp = W + 2 * padding[1];
  const ekh = dilation[0] * (kh - 1) + 1;
  const ekw = dilation[1] * (kw - 1) + 1;
  if (ekh > Hp || ekw > Wp) {
    throw new WgtorchError(
      `conv2d: calculated padded input size per channel: (${Hp} x ${Wp}). Kernel size: (${ekh} x ${ekw}). Kernel size can't be greater than actual input size (input ${fmtShape(x.shape)}). Fix: use a smaller kernel, more padding or a larger input.`,
    );
  }
  const geo: Geometry = {
    kernel: [kh, kw],
    stride,
    padding,
    dilation,
    input: [H, W],
    output: [Math.floor((Hp - ekh) / stride[0]) + 1, Math.floor((Wp - ekw) / stride[1]) + 1],
  };
  const out = (Convolution.apply as (...a: unknown[]) => Tensor)(x4, weight, bias ?? 0, geo);
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
  const [N, C, H, W] = x4.shape;
  const Hp = H + 2 * padding[0];
  const Wp = W + 2 * padding[1];
  if (k[0] > Hp || k[1] > Wp) {
    throw new WgtorchError(
      `${op}: calculated padded input size per channel: (${Hp} x ${Wp}). Kernel size: (${k[0]} x ${k[1]}). Kernel size can't be greater than actual input size (input ${fmtShape(x.shape)}). Fix: use a smaller kernel, more padding or a larger input.`,
    );
  }
  const out: [number, number] = [Math.floor((Hp - k[0]) / stride[0]) + 1, Math.floor((Wp - k[1]) / stride[1]) + 1];
  // every channel an image of one channel: rows (n, c, oh, ow), columns the window's k*k
  // elements (padding reads -inf for max, 0 for avg: PyTorch's countIncludePad)
  const attrs = { kernel: k, stride, padding, dilation: [1, 1], out, transposed: false, fill: kind === 'max' ? '-inf' : 'zero' };
  const planes = () => x4.reshape([N * C, 1, H, W]);
  let y: Tensor;
  if (kind === 'avg') y = apply('im2col', [planes()], attrs).mean(1).reshape([N, C, out[0], out[1]]);
  else if (!x4.requiresGrad || !isGradEnabled()) y = apply('im2col', [planes()], attrs).amax(1).reshape([N, C, out[0], out[1]]);
  else y = (MaxPool.apply as (...a: unknown[]) => Tensor)(x4, attrs);
  return unbatched ? y.squeeze(0) : y;
}

/**
 * A max pool that needs a gradient: the max over each window of the im2col and the window's
 * argmax (the first maximum, NaN winning: PyTorch's max_pool2d sends the gradient there, also
 * on ties); the gradient is col2imAt of (g, argmax): for each input element, the sum over the
 * windows containing it of g where it is their argmax, one kernel with no [rows, cols] mask.
 * The max is the element at the argmax (both pick it by the same comparison), so eval and
 * training give the same values.
 */
class MaxPool extends AutogradFunction {
  static forward(ctx: Context, x: Tensor, attrs: Attrs): Tensor {
    const [N, C, H, W] = x.shape;
    const [Ho, Wo] = attrs.out as number[];
    const cols = apply('im2col', [x.reshape([N * C, 1, H, W])], attrs);
    const idx = cols.argmax(1).reshape([N, C, Ho, Wo]);
    ctx.saveForBackward(idx);
    ctx.attrs = attrs;
    ctx.shape = x.shape;
    return cols.amax(1).reshape([N, C, Ho, Wo]);
  }
  static backward(ctx: Context, g: Tensor): (Tensor | null)[] {
    const [idx] = ctx.savedTensors;
    return [apply('col2imAt', [g, idx], { ...(ctx.attrs as Attrs), fill: 'zero', shape: [...(ctx.shape as number[])] }), null];
  }
}

export function maxPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return pool('maxPool2d', x, kernelSize, opts, 'max');
}
/** Average pooling; padded zeros count in the average (PyTorch's countIncludePad default). */
export function avgPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions = {}): Tensor {
  return pool('avgPool2d', x, kernelSize, opts, 'avg');
}
