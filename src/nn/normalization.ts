/** LayerNorm and BatchNorm1d/2d, with PyTorch's parameter and buffer names and default init. */
import { ones, zeros } from '../eager/factories.ts';
import { noGrad } from '../eager/grad-mode.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import type { Device } from '../runtime/backend.ts';
import { batchNorm, layerNorm } from './functional-norm.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

export class LayerNorm extends Module<[Tensor], Tensor> {
  readonly normalizedShape: number[];
  readonly eps: number;
  weight: Parameter | null;
  bias: Parameter | null;
  constructor(normalizedShape: number | readonly number[], opts: { eps?: number; elementwiseAffine?: boolean; device?: Device } = {}) {
    super();
    checkOptions('LayerNorm', opts, ['eps', 'elementwiseAffine', 'device']);
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = opts.eps ?? 1e-5;
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? new Parameter(ones(this.normalizedShape, { device: opts.device })) : null;
    this.bias = affine ? new Parameter(zeros(this.normalizedShape, { device: opts.device })) : null;
  }
  override forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, { eps: this.eps });
  }
  override extraRepr(): string {
    return `(${this.normalizedShape.join(', ')},), eps=${this.eps}, elementwise_affine=${this.weight ? 'True' : 'False'}`;
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** null: running statistics are a cumulative average over all batches. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
  device?: Device;
}

abstract class BatchNormBase extends Module<[Tensor], Tensor> {
  readonly eps: number;
  readonly momentum: number | null;
  weight: Parameter | null;
  bias: Parameter | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  declare num_batches_tracked: Tensor | null;
  protected abstract readonly ranks: number[];

  constructor(
    readonly numFeatures: number,
    opts: BatchNormOptions = {},
  ) {
    super();
    const name = new.target.name;
    checkOptions(name, opts, ['eps', 'momentum', 'affine', 'trackRunningStats', 'device']);
    if (!Number.isInteger(numFeatures) || numFeatures <= 0) {
      throw new WgtorchError(`${name}: numFeatures must be a positive integer, got ${String(numFeatures)}.`);
    }
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    const device = opts.device;
    const affine = opts.affine ?? true;
    this.weight = affine ? new Parameter(ones(numFeatures, { device })) : null;
    this.bias = affine ? new Parameter(zeros(numFeatures, { device })) : null;
    const track = opts.trackRunningStats ?? true;
    this.registerBuffer('running_mean', track ? zeros(numFeatures, { device }) : null);
    this.registerBuffer('running_var', track ? ones(numFeatures, { device }) : null);
    this.registerBuffer('num_batches_tracked', track ? zeros([], { device, dtype: 'int32' }) : null);
  }

  /** camelCase names for the buffers (the state dict keeps PyTorch's). */
  get runningMean(): Tensor | null {
    return this.running_mean;
  }
  get runningVar(): Tensor | null {
    return this.running_var;
  }
  get numBatchesTracked(): Tensor | null {
    return this.num_batches_tracked;
  }

  override forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.dim())) {
      throw new WgtorchError(
        `${this.constructor.name}: expected ${this.ranks.map((r) => `${r}D`).join(' or ')} input (got ${x.dim()}D input of shape ${fmtShape(x.shape)}).` +
          (this.ranks.includes(4) ? ' Fix: images are [N, C, H, W].' : ' Fix: features are [N, C] or [N, C, L].'),
      );
    }
    let momentum = this.momentum ?? 0;
    const tracking = this.training && this.num_batches_tracked !== null;
    if (tracking) {
      const n = this.num_batches_tracked!;
      noGrad(() => n.add_(1));
      // a cumulative average needs the count as a number: only where it can be read (eager cpu)
      if (this.momentum === null) momentum = 1 / n.itemSync();
    }
    // running statistics are used in eval, and updated in training when they are tracked
    const useBatch = this.training || this.running_mean === null;
    return batchNorm(x, useBatch && !tracking ? null : this.running_mean, useBatch && !tracking ? null : this.running_var, {
      weight: this.weight,
      bias: this.bias,
      training: useBatch,
      momentum,
      eps: this.eps,
    });
  }
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.weight ? 'True' : 'False'}, track_running_stats=${this.running_mean ? 'True' : 'False'}`;
  }
}

export class BatchNorm1d extends BatchNormBase {
  protected readonly ranks = [2, 3];
}
export class BatchNorm2d extends BatchNormBase {
  protected readonly ranks = [4];
}
