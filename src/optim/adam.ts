import { zerosLike } from '../eager/factories.ts';
import { persistent } from '../eager/persistent.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fusedAdamCpu } from './fused-cpu.ts';
import { Optimizer, type ParamGroup, type ParamsInput, type State } from './optimizer.ts';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

/**
 * Adam as PyTorch's single-tensor path computes it:
 * m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
 * AdamW first decays the weights: p *= 1 - lr*wd.
 */
export class Adam extends Optimizer<AdamOptions> {
  protected decoupled = false;
  constructor(params: ParamsInput<AdamOptions>, opts: Partial<AdamOptions> = {}, defaults?: Partial<AdamOptions>) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false, ...defaults }, opts);
  }
  protected override validate(g: ParamGroup<AdamOptions>): void {
    super.validate(g);
    const [b1, b2] = g.betas;
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1)) {
      throw new WgtorchError(`${this.constructor.name}: invalid beta parameters: [${g.betas.join(', ')}]; each must be in [0, 1).`);
    }
    if (g.eps < 0) throw new WgtorchError(`${this.constructor.name}: invalid epsilon value: ${g.eps}.`);
  }
  protected update(p: Tensor, grad: Tensor, g: ParamGroup<AdamOptions>, state: State): void {
    const [b1, b2] = g.betas;
    if (state.step === undefined) {
      state.step = 0;
      state.expAvg = persistent(() => zerosLike(p));
      state.expAvgSq = persistent(() => zerosLike(p));
      if (g.amsgrad) state.maxExpAvgSq = persistent(() => zerosLike(p));
    }
    const t = (state.step as number) + 1;
    state.step = t;
    const m = state.expAvg as Tensor;
    const v = state.expAvgSq as Tensor;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    // eager cpu: the same arithmetic as the ops below, in one loop (src/optim/fused-cpu.ts)
    const fused = { lr: g.lr, b1, b2, eps: g.eps, weightDecay: g.weightDecay, decoupled: this.decoupled, maximize: g.maximize, bc1, bc2 };
    if (fusedAdamCpu(p, grad, m, v, g.amsgrad ? (state.maxExpAvgSq as Tensor) : null, fused)) return;
    let d = g.maximize ? grad.neg() : grad;
    if (g.weightDecay !== 0) {
      if (this.decoupled) p.mul_(1 - g.lr * g.weightDecay);
      else d = d.add(p, { alpha: g.weightDecay });
    }
    m.mul_(b1).add_(d, { alpha: 1 - b1 });
    v.mul_(b2).add_(d.mul(d).mul(1 - b2));
    let second = v;
    if (g.amsgrad) {
      const mx = state.maxExpAvgSq as Tensor;
      mx.copy_(mx.max(v));
      second = mx;
    }
    const denom = second.sqrt().div(Math.sqrt(bc2)).add(g.eps);
    p.sub_(m.div(denom).mul(g.lr / bc1));
  }
}

export class AdamW extends Adam {
  constructor(params: ParamsInput<AdamOptions>, opts: Partial<AdamOptions> = {}) {
    super(params, opts, { weightDecay: 1e-2 });
    this.decoupled = true;
  }
}
