/** torch.nn.functional: losses and activations as functions (composites of registry ops). */
import { apply, tracing } from '../eager/dispatch.ts';
import { arange, ones } from '../eager/factories.ts';
import { tril } from '../eager/ops.ts';
import { checkIndex } from '../eager/checks.ts';
import { checkOptions } from '../eager/options.ts';
import { rand } from '../eager/factories.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape, sameShape } from '../ir/shape.ts';

export type Reduction = 'mean' | 'sum' | 'none';
export interface LossOptions {
  reduction?: Reduction;
}

export const relu = (x: Tensor) => x.relu();
export const tanh = (x: Tensor) => x.tanh();
export const sigmoid = (x: Tensor) => x.sigmoid();
/** A dim given as PyTorch's positional argument or as its keyword ({ dim }). */
export function dimArg(op: string, dim: number | { dim?: number } | undefined, fallback?: number): number {
  if (dim !== null && typeof dim === 'object') {
    checkOptions(op, dim, ['dim']);
    dim = dim.dim;
  }
  if (dim === undefined && fallback !== undefined) return fallback;
  if (typeof dim !== 'number' || !Number.isInteger(dim)) {
    throw new WgtorchError(`${op}: dim must be an integer (or { dim }), got ${String(dim)}. Fix: e.g. ${op}(x, -1) or ${op}(x, { dim: -1 }).`);
  }
  return dim;
}
export const softmax = (x: Tensor, dim: number | { dim: number }) => x.softmax(dimArg('softmax', dim));
export const logSoftmax = (x: Tensor, dim: number | { dim: number }) => x.logSoftmax(dimArg('logSoftmax', dim));

/** y = x W^T + b, with W stored [out, in] as in nn.Linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const inF = weight.shape[1];
  if (x.shape[x.dim() - 1] !== inF) {
    throw new WgtorchError(
      `linear: mat1 and mat2 shapes cannot be multiplied (${x.shape.slice(0, -1).reduce((p, d) => p * d, 1)}x${x.shape[x.dim() - 1]} and ${weight.shape[1]}x${weight.shape[0]}).` +
        ` Fix: the input's last dim (${x.shape[x.dim() - 1]}) must equal in_features (${inF}).`,
    );
  }
  const y = x.matmul(weight.t());
  return bias ? y.add(bias) : y;
}

export { layerNorm, batchNorm } from './functional-norm.ts';
export type { LayerNormOptions, BatchNormOptions } from './functional-norm.ts';

/**
 * Zeroes elements with probability p and scales the rest by 1/(1-p) while training.
 * `dropout(x, { p, training })` as PyTorch's keywords; `dropout(x, p, training)` also works.
 */
export function dropout(x: Tensor, pOrOpts: number | { p?: number; training?: boolean } = 0.5, trainingArg = true): Tensor {
  let p = 0.5;
  let training = trainingArg;
  if (typeof pOrOpts === 'object' && pOrOpts !== null) {
    checkOptions('dropout', pOrOpts, ['p', 'training']);
    p = pOrOpts.p ?? 0.5;
    training = pOrOpts.training ?? true;
  } else p = pOrOpts;
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new WgtorchError(`dropout: probability has to be between 0 and 1, but got ${p}.`);
  if (!training || p === 0) return x;
  if (p === 1) return x.mul(0);
  const keep = rand(x.shape, { device: x.device }).ge(p);
  return x.where(keep, 0).div(1 - p);
}

function reduce(op: string, loss: Tensor, reduction: Reduction | undefined): Tensor {
  switch (reduction ?? 'mean') {
    case 'mean': return loss.mean();
    case 'sum': return loss.sum();
    case 'none': return loss;
    default:
      throw new WgtorchError(`${op}: ${String(reduction)} is not a valid value for reduction. Fix: use 'mean', 'sum' or 'none'.`);
  }
}

function sameShapes(op: string, input: Tensor, target: Tensor): void {
  if (!sameShape(input.shape, target.shape)) {
    throw new WgtorchError(
      `${op}: the target size ${fmtShape(target.shape)} is different to the input size ${fmtShape(input.shape)}; broadcasting them would give a wrong loss.` +
        ' Fix: reshape the target (or the prediction) to the same shape.',
    );
  }
}

export function mseLoss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkOptions('mseLoss', opts, ['reduction']);
  sameShapes('mseLoss', input, target);
  return reduce('mseLoss', input.sub(target).pow(2), opts.reduction);
}

export function l1Loss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkOptions('l1Loss', opts, ['reduction']);
  sameShapes('l1Loss', input, target);
  return reduce('l1Loss', input.sub(target).abs(), opts.reduction);
}

export interface CrossEntropyOptions extends LossOptions {
  /** Targets equal to this class index add nothing and are not counted by 'mean' (PyTorch: -100). */
  ignoreIndex?: number;
  /** Mixes the target with the uniform distribution: (1 - s) * target + s / C. */
  labelSmoothing?: number;
}

/**
 * Cross entropy of logits [N, C] (or [C], or [N, C, d1, ...]) against int32 class indices
 * [N] ([N, d1, ...]), or against class probabilities shaped like the logits; with PyTorch's
 * ignoreIndex and labelSmoothing.
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  checkOptions('crossEntropy', opts, ['reduction', 'ignoreIndex', 'labelSmoothing']);
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const smoothing = opts.labelSmoothing ?? 0;
  if (typeof smoothing !== 'number' || !(smoothing >= 0 && smoothing <= 1)) {
    throw new WgtorchError(`crossEntropy: labelSmoothing must be between 0.0 and 1.0, got ${String(smoothing)}.`);
  }
  if (input.dim() < 1) throw new WgtorchError(`crossEntropy: expected logits of shape [N, C], [C] or [N, C, d1, ...], got ${fmtShape(input.shape)}.`);
  const reduction = opts.reduction ?? 'mean';
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') return reduce('crossEntropy', input, reduction);
  // [N, C, d...] -> [N*d..., C]: the class dim last, one row per prediction
  const C = input.dim() === 1 ? input.shape[0] : input.shape[1];
  const spatial = input.dim() > 2 ? input.shape.slice(2) : [];
  const rowsShape = input.dim() === 1 ? [] : [input.shape[0], ...spatial];
  const toRows = (t: Tensor) => {
    if (t.dim() === 1) return t.unsqueeze(0);
    if (t.dim() === 2) return t;
    const perm = [0, ...spatial.map((_, i) => i + 2), 1];
    return t.permute(perm).reshape([-1, C]);
  };
  const logp = toRows(input).logSoftmax(1);
  const unrows = (loss: Tensor) => loss.reshape(rowsShape);

  if (target.dtype === 'float32' && sameShape(target.shape, input.shape)) {
    let t = toRows(target);
    if (smoothing > 0) t = t.mul(1 - smoothing).add(smoothing / C);
    const loss = logp.mul(t).sum(1).neg();
    if (reduction === 'none') return unrows(loss);
    return reduction === 'sum' ? loss.sum() : loss.sum().div(loss.numel());
  }
  if (target.dtype !== 'int32') {
    throw new WgtorchError(
      `crossEntropy: expected target of dtype int32 (class indices) with shape ${fmtShape(rowsShape)}, but got dtype ${target.dtype} and shape ${fmtShape(target.shape)}.` +
        " Fix: pass class indices as torch.tensor([...], { dtype: 'int32' }) (or targets.int()), or class probabilities shaped like the logits.",
    );
  }
  if (!sameShape(target.shape, rowsShape)) {
    throw new WgtorchError(
      `crossEntropy: expected target of shape ${fmtShape(rowsShape)} for logits ${fmtShape(input.shape)}, got ${fmtShape(target.shape)}.` +
        (input.dim() > 2 ? ' Fix: the class dim is dim 1; targets have the other dims.' : ' Fix: one class index per row of logits.'),
    );
  }
  // on every device and mode (an op: see eager/checks.ts), not only where the cpu can read the values
  const checked = checkIndex(target, {
    op: 'crossEntropy', what: 'target', lo: 0, hi: C, ignore: ignoreIndex, bounds: `for ${C} classes`,
    fix: `class indices must lie in [0, ${C}) (or be ignoreIndex ${ignoreIndex}): check the labels, or give the model's last layer as many outputs as there are classes.`,
  });
  const tgt = checked.reshape([-1]);
  const oneHot = tgt.unsqueeze(1).eq(arange(C, { device: logp.device }));
  let loss = apply('where', [oneHot, logp, 0]).sum(1).neg();
  if (smoothing > 0) loss = loss.mul(1 - smoothing).add(logp.sum(1).neg().mul(smoothing / C));
  const kept = tgt.ne(ignoreIndex);
  loss = apply('where', [kept, loss, 0]);
  if (reduction === 'none') return unrows(loss);
  if (reduction === 'sum') return loss.sum();
  // the mean over the targets that count (0/0 = nan when every target is ignored, as PyTorch)
  return loss.sum().div(kept.sum().toDType('float32'));
}

export { conv2d, maxPool2d, avgPool2d } from './functional-conv.ts';
export type { Conv2dOptions, Pool2dOptions, Pair } from './functional-conv.ts';

export const gelu = (x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}) => x.gelu(opts);
export const silu = (x: Tensor) => x.silu();

/** Rows of `weight` [num, dim] picked by an int32 index of any shape: the result is [...index.shape, dim]. */
export function embedding(index: Tensor, weight: Tensor): Tensor {
  if (weight.dim() !== 2) throw new WgtorchError(`embedding: expected a 2-D weight [numEmbeddings, embeddingDim], got ${fmtShape(weight.shape)}.`);
  if (index.dtype !== 'int32') {
    throw new WgtorchError(`embedding: expected an int32 index tensor, got dtype ${index.dtype} (shape ${fmtShape(index.shape)}). Fix: convert it with .int().`);
  }
  return weight.index(index);
}

/** One-hot rows of an int32 index: [...index.shape, numClasses], int32 (.float() converts). */
export function oneHot(index: Tensor, numClasses = -1): Tensor {
  if (index.dtype !== 'int32') {
    throw new WgtorchError(`oneHot: one_hot is only applicable to index tensors (int32), got dtype ${index.dtype}. Fix: convert with .int().`);
  }
  let C = numClasses;
  if (C === -1) {
    if (index.device !== 'cpu') throw new WgtorchError(`oneHot: numClasses must be given for an index on ${index.device} (inferring it reads the values). Fix: oneHot(index, numClasses).`);
    C = index.numel() ? Math.max(...index.toArraySync()) + 1 : 0;
  }
  if (!Number.isInteger(C) || C < 0) throw new WgtorchError(`oneHot: numClasses must be a non-negative integer or -1, got ${C}.`);
  if (index.device === 'cpu' && !tracing.recorder?.records(index)) {
    for (const v of index.toArraySync()) {
      if (v < 0 || v >= C) throw new WgtorchError(`oneHot: class values must be in [0, ${C}) (numClasses ${C}), got ${v}.`);
    }
  }
  return index.unsqueeze(-1).eq(arange(C, { device: index.device, dtype: 'int32' })).int();
}

export interface AttentionOptions {
  /** bool: true where a query may attend to a key; float: added to the scores */
  attnMask?: Tensor | null;
  isCausal?: boolean;
  dropoutP?: number;
  /** defaults to 1/sqrt(E) */
  scale?: number;
}

/** softmax(q k^T * scale + mask) v over the last two dims: q [..., L, E], k [..., S, E], v [..., S, Ev]. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  checkOptions('scaledDotProductAttention', opts, ['attnMask', 'isCausal', 'dropoutP', 'scale']);
  if (q.dim() < 2 || k.dim() < 2 || v.dim() < 2) {
    throw new WgtorchError(`scaledDotProductAttention: expected q, k, v of at least 2 dims [..., L, E], got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}.`);
  }
  const E = q.shape[q.dim() - 1];
  const L = q.shape[q.dim() - 2];
  const S = k.shape[k.dim() - 2];
  if (k.shape[k.dim() - 1] !== E || v.shape[v.dim() - 2] !== S) {
    throw new WgtorchError(
      `scaledDotProductAttention: q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)} and v ${fmtShape(v.shape)} do not fit: k needs q's last dim (${E}) and v needs k's length (${S}) in dim -2.`,
    );
  }
  if (opts.isCausal && opts.attnMask) throw new WgtorchError('scaledDotProductAttention: give attnMask or isCausal, not both.');
  const scale = opts.scale ?? 1 / Math.sqrt(E);
  let att = q.matmul(k.transpose(-2, -1)).mul(scale);
  if (opts.isCausal) {
    const keep = tril(ones(L, S, { device: q.device })).eq(0);
    att = att.maskedFill(keep, -Infinity);
  } else if (opts.attnMask) {
    const m = opts.attnMask;
    att = m.dtype === 'bool' ? att.maskedFill(m.eq(0), -Infinity) : att.add(m);
  }
  let p = att.softmax(-1);
  if (opts.dropoutP) p = dropout(p, { p: opts.dropoutP, training: true });
  return p.matmul(v);
}
