/** torch.nn.functional: losses and activations as functions (composites of registry ops). */
import { apply } from '../eager/dispatch.ts';
import { arange } from '../eager/factories.ts';
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
export const softmax = (x: Tensor, dim: number) => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number) => x.logSoftmax(dim);

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

export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (p < 0 || p > 1) throw new WgtorchError(`dropout: probability has to be between 0 and 1, but got ${p}.`);
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

/**
 * Cross entropy of logits [N, C] against int32 class indices [N] (or class
 * probabilities shaped like the logits).
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkOptions('crossEntropy', opts, ['reduction']);
  if (input.dim() !== 2 && input.dim() !== 1) {
    throw new WgtorchError(`crossEntropy: expected logits of shape [N, C] or [C], got ${fmtShape(input.shape)}.`);
  }
  const logits = input.dim() === 1 ? input.unsqueeze(0) : input;
  const logp = logits.logSoftmax(1);
  if (target.dtype === 'float32' && sameShape(target.shape, input.shape)) {
    const t = input.dim() === 1 ? target.unsqueeze(0) : target;
    const loss = logp.mul(t).sum(1).neg();
    return reduce('crossEntropy', input.dim() === 1 ? loss.squeeze(0) : loss, opts.reduction);
  }
  if (target.dtype !== 'int32') {
    throw new WgtorchError(
      `crossEntropy: expected target of dtype int32 (class indices) with shape ${fmtShape(logits.shape.slice(0, 1))}, but got dtype ${target.dtype} and shape ${fmtShape(target.shape)}.` +
        " Fix: pass class indices as torch.tensor([...], { dtype: 'int32' }) (or targets.int()), or class probabilities shaped like the logits.",
    );
  }
  const tgt = input.dim() === 1 ? target.reshape([1]) : target;
  const [N, C] = logits.shape;
  if (tgt.dim() !== 1 || tgt.shape[0] !== N) {
    throw new WgtorchError(`crossEntropy: expected target of shape [${N}] for logits ${fmtShape(logits.shape)}, got ${fmtShape(target.shape)}.`);
  }
  const checked = checkIndex(tgt, {
    op: 'crossEntropy', what: 'target', lo: 0, hi: C, bounds: `for ${C} classes`,
    fix: `class indices must lie in [0, ${C}): check the labels, or give the model's last layer as many outputs as there are classes.`,
  });
  const oneHot = checked.unsqueeze(1).eq(arange(C, { device: logits.device }));
  const loss = apply('where', [oneHot, logp, 0]).sum(1).neg();
  return reduce('crossEntropy', input.dim() === 1 ? loss.squeeze(0) : loss, opts.reduction);
}
