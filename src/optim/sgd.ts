import { zerosLike } from '../eager/factories.ts';
import { persistent } from '../eager/persistent.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { Optimizer, type ParamGroup, type ParamsInput, type State } from './optimizer.ts';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/** PyTorch's SGD: the momentum buffer starts as the first gradient, then buf = m*buf + (1-dampening)*g. */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: ParamsInput<SGDOptions>, opts: Partial<SGDOptions> = {}) {
    super(params, { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false }, opts);
  }
  protected override validate(g: ParamGroup<SGDOptions>): void {
    super.validate(g);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
      throw new WgtorchError('SGD: nesterov momentum requires a momentum and zero dampening.');
    }
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<SGDOptions>, state: State): void {
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, { alpha: g.weightDecay });
    if (g.momentum !== 0) {
      let buf = state.momentumBuffer as Tensor | undefined;
      if (!buf) {
        buf = state.momentumBuffer = persistent(() => zerosLike(p));
        buf.copy_(d);
      } else buf.mul_(g.momentum).add_(d, { alpha: 1 - g.dampening });
      d = g.nesterov ? d.add(buf, { alpha: g.momentum }) : buf;
    }
    p.add_(d, { alpha: -g.lr });
  }
}
