/** Loss modules; each is the functional form with its options bound. */
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import * as F from './functional.ts';
import { Module } from './module.ts';

export interface LossModuleOptions {
  reduction?: F.Reduction;
  /** Legacy PyTorch option (the seed uses it): false means reduction 'sum'. */
  sizeAverage?: boolean;
  /** Legacy: false means reduction 'none'. */
  reduce?: boolean;
}

function reductionOf(name: string, opts: LossModuleOptions, extra: string[] = []): F.Reduction {
  checkOptions(name, opts, ['reduction', 'sizeAverage', 'reduce', ...extra]);
  if (opts.reduce === false) return 'none';
  if (opts.sizeAverage !== undefined) return opts.sizeAverage ? 'mean' : 'sum';
  const r = opts.reduction ?? 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') {
    throw new WgtorchError(`${name}: ${String(r)} is not a valid value for reduction. Fix: use 'mean', 'sum' or 'none'.`);
  }
  return r;
}

abstract class Loss extends Module<[Tensor, Tensor], Tensor> {
  readonly reduction: F.Reduction;
  constructor(opts: LossModuleOptions = {}, extra: string[] = []) {
    super();
    this.reduction = reductionOf(new.target.name, opts, extra);
  }
  override extraRepr(): string {
    return `reduction='${this.reduction}'`;
  }
}

export class MSELoss extends Loss {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.mseLoss(input, target, { reduction: this.reduction });
  }
}
export class L1Loss extends Loss {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.l1Loss(input, target, { reduction: this.reduction });
  }
}
export class CrossEntropyLoss extends Loss {
  readonly ignoreIndex: number;
  readonly labelSmoothing: number;
  constructor(opts: LossModuleOptions & { ignoreIndex?: number; labelSmoothing?: number } = {}) {
    super(opts, ['ignoreIndex', 'labelSmoothing']);
    this.ignoreIndex = opts.ignoreIndex ?? -100;
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, { reduction: this.reduction, ignoreIndex: this.ignoreIndex, labelSmoothing: this.labelSmoothing });
  }
}
