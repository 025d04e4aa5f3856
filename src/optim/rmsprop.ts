import { zerosLike } from '../eager/factories.ts';
import { persistent } from '../eager/persistent.ts';
import type { Tensor } from '../eager/tensor.ts';
import { Optimizer, type ParamGroup, type ParamsInput, type State } from './optimizer.ts';

export interface RMSpropOptions {
  lr: number;
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

/** s = alpha s + (1-alpha) g^2;  p -= lr g / (sqrt(s) + eps)  (with PyTorch's momentum and centered variants). */
export class RMSprop extends Optimizer<RMSpropOptions> {
  constructor(params: ParamsInput<RMSpropOptions>, opts: Partial<RMSpropOptions> = {}) {
    super(params, { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false }, opts);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<RMSpropOptions>, state: State): void {
    if (state.step === undefined) {
      state.step = 0;
      state.squareAvg = persistent(() => zerosLike(p));
      if (g.momentum > 0) state.momentumBuffer = persistent(() => zerosLike(p));
      if (g.centered) state.gradAvg = persistent(() => zerosLike(p));
    }
    state.step = (state.step as number) + 1;
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, { alpha: g.weightDecay });
    const sq = state.squareAvg as Tensor;
    sq.mul_(g.alpha).add_(d.mul(d).mul(1 - g.alpha));
    let avg: Tensor;
    if (g.centered) {
      const ga = state.gradAvg as Tensor;
      ga.mul_(g.alpha).add_(d, { alpha: 1 - g.alpha });
      avg = sq.sub(ga.mul(ga)).sqrt().add(g.eps);
    } else avg = sq.sqrt().add(g.eps);
    if (g.momentum > 0) {
      const buf = state.momentumBuffer as Tensor;
      buf.mul_(g.momentum).add_(d.div(avg));
      p.add_(buf, { alpha: -g.lr });
    } else p.sub_(d.div(avg).mul(g.lr));
  }
}
