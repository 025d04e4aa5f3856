/** Normalisation as composites of registry ops: layerNorm and batchNorm (gradients come from autograd). */
import { noGrad } from '../eager/grad-mode.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape, sameShape } from '../ir/shape.ts';

export interface LayerNormOptions {
  eps?: number;
}

/** Normalises over the last dims (`normalizedShape`) with the biased variance, as PyTorch. */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  opts: LayerNormOptions = {},
): Tensor {
  checkOptions('layerNorm', opts, ['eps']);
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const eps = opts.eps ?? 1e-5;
  const k = shape.length;
  if (k === 0 || x.dim() < k || !sameShape(x.shape.slice(x.dim() - k), shape)) {
    throw new WgtorchError(
      `layerNorm: given normalizedShape=${fmtShape(shape)}, expected input with shape [*, ${shape.join(', ')}], but got input of size ${fmtShape(x.shape)}.` +
        ' Fix: normalizedShape must equal the last dims of the input (e.g. x.shape.slice(-1)).',
    );
  }
  for (const [what, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && !sameShape(t.shape, shape)) {
      throw new WgtorchError(`layerNorm: expected ${what} of shape ${fmtShape(shape)} (normalizedShape), got ${fmtShape(t.shape)}.`);
    }
  }
  const dims = shape.map((_, i) => x.dim() - k + i);
  const centred = x.sub(x.mean(dims, true));
  const variance = centred.pow(2).mean(dims, true);
  let y = centred.div(variance.add(eps).sqrt());
  if (weight) y = y.mul(weight);
  if (bias) y = y.add(bias);
  return y;
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  /** null: a cumulative average (the caller passes 1/numBatchesTracked as momentum). */
  momentum?: number;
  eps?: number;
}

/**
 * Batch normalisation of x [N, C, *] per channel C. Training: normalises with the batch
 * statistics (biased variance) and, where running statistics are given, updates them in
 * place with the unbiased batch variance, as PyTorch. Eval: normalises with the running ones.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  checkOptions('batchNorm', opts, ['weight', 'bias', 'training', 'momentum', 'eps']);
  const { weight = null, bias = null, training = false, momentum = 0.1, eps = 1e-5 } = opts;
  if (x.dim() < 2) {
    throw new WgtorchError(`batchNorm: expected an input of shape [N, C, *] (at least 2-D), got ${fmtShape(x.shape)}.`);
  }
  const C = x.shape[1];
  for (const [what, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && (t.dim() !== 1 || t.shape[0] !== C)) {
      throw new WgtorchError(
        `batchNorm: ${what} should contain ${C} elements (the input's channels, dim 1 of ${fmtShape(x.shape)}), not ${t.numel()} (shape ${fmtShape(t.shape)}).` +
          ' Fix: build the layer with numFeatures equal to the input channels.',
      );
    }
  }
  if ((runningMean === null) !== (runningVar === null)) {
    throw new WgtorchError('batchNorm: give both runningMean and runningVar, or neither.');
  }
  const dims = x.shape.map((_, i) => i).filter((i) => i !== 1);
  const perChannel = [1, C, ...x.shape.slice(2).map(() => 1)];
  const count = x.numel() / Math.max(C, 1);
  let mean: Tensor;
  let variance: Tensor;
  if (training) {
    if (count <= 1) {
      throw new WgtorchError(
        `batchNorm: expected more than 1 value per channel when training, got input size ${fmtShape(x.shape)}. Fix: use a batch of 2 or more, or call model.eval().`,
      );
    }
    mean = x.mean(dims, true);
    variance = x.sub(mean).pow(2).mean(dims, true);
    if (runningMean && runningVar) {
      const m = momentum;
      noGrad(() => {
        runningMean.mul_(1 - m).add_(mean.reshape([C]).mul(m));
        runningVar.mul_(1 - m).add_(variance.reshape([C]).mul((m * count) / (count - 1)));
      });
    }
  } else {
    if (!runningMean || !runningVar) {
      throw new WgtorchError('batchNorm: running statistics are required when training is false. Fix: pass them, or { training: true }.');
    }
    mean = runningMean.reshape(perChannel);
    variance = runningVar.reshape(perChannel);
  }
  let y = x.sub(mean).div(variance.add(eps).sqrt());
  if (weight) y = y.mul(weight.reshape(perChannel));
  if (bias) y = y.add(bias.reshape(perChannel));
  return y;
}
