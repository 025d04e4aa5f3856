import { fullLike } from '../eager/factories.ts';
import { persistent } from '../eager/persistent.ts';
import type { Tensor } from '../eager/tensor.ts';
import { Optimizer, type ParamGroup, type ParamsInput, type State } from './optimizer.ts';

export interface AdagradOptions {
  lr: number;
  lrDecay: number;
  weightDecay: number;
  initialAccumulatorValue: number;
  eps: number;
  maximize: boolean;
}

/** s += g^2;  p -= lr/(1+(t-1) lr_decay) * g / (sqrt(s) + eps). */
export class Adagrad extends Optimizer<AdagradOptions> {
  constructor(params: ParamsInput<AdagradOptions>, opts: Partial<AdagradOptions> = {}) {
    super(params, { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false }, opts);
    // PyTorch creates the accumulators at construction.
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        this.state.set(p, { step: 0, sum: persistent(() => fullLike(p, group.initialAccumulatorValue)) });
      }
    }
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdagradOptions>, state: State): void {
    if (state.sum === undefined) {
      state.step = 0;
      state.sum = persistent(() => fullLike(p, g.initialAccumulatorValue));
    }
    const t = (state.step as number) + 1;
    state.step = t;
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) d = d.add(p, { alpha: g.weightDecay });
    const clr = g.lr / (1 + (t - 1) * g.lrDecay);
    const sum = state.sum as Tensor;
    sum.add_(d.mul(d));
    p.sub_(d.div(sum.sqrt().add(g.eps)).mul(clr));
  }
}
