/**
 * torch.optim.lrScheduler: StepLR, CosineAnnealingLR and LambdaLR with PyTorch 1.13's
 * formulas (CosineAnnealingLR in its recursive form, which is what PyTorch's step() computes).
 * A scheduler writes plain numbers into the optimizer's param groups; a compiled whole step
 * lifts those numbers into per-call scalars, so a changed lr takes effect without recompiling.
 */
import { checkOptions } from '../eager/options.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Optimizer } from './optimizer.ts';

type LrGroup = { lr: number };

export abstract class LRScheduler {
  readonly baseLrs: number[];
  lastEpoch = -1;
  /** How many times step() ran (PyTorch's _step_count, the constructor's step included). */
  protected stepCount = 0;
  private lastLr: number[] = [];

  constructor(readonly optimizer: Optimizer<object>) {
    const name = new.target.name;
    if (!optimizer || !Array.isArray((optimizer as { paramGroups?: unknown }).paramGroups)) {
      throw new WgtorchError(`${name}: expected an optimizer (e.g. new torch.optim.SGD(model.parameters(), { lr: 0.1 })), got ${typeof optimizer}.`);
    }
    this.baseLrs = this.groups().map((g, i) => {
      if (typeof g.lr !== 'number') throw new WgtorchError(`${name}: param group ${i} has no numeric lr.`);
      return g.lr;
    });
  }

  protected groups(): LrGroup[] {
    return this.optimizer.paramGroups as unknown as LrGroup[];
  }

  /** PyTorch runs the first step in the constructor; subclasses call this once their fields are set. */
  protected init(): void {
    this.step();
  }

  /** The learning rates for lastEpoch, computed from the current ones (recursive forms) or the base ones. */
  protected abstract computeLr(): number[];

  step(): void {
    this.stepCount++;
    this.lastEpoch++;
    const lrs = this.computeLr();
    this.groups().forEach((g, i) => (g.lr = lrs[i]));
    this.lastLr = this.groups().map((g) => g.lr);
  }

  /** The learning rates the last step() set, one per param group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  stateDict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) if (k !== 'optimizer' && typeof v !== 'function') out[k] = Array.isArray(v) ? [...v] : v;
    return out;
  }
  loadStateDict(state: Record<string, unknown>): void {
    Object.assign(this, state);
  }
}

/** lr = baseLr * gamma^(floor(epoch / stepSize)), applied as a multiplication every stepSize steps. */
export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;
  constructor(optimizer: Optimizer<object>, opts: { stepSize: number; gamma?: number }) {
    super(optimizer);
    checkOptions('StepLR', opts, ['stepSize', 'gamma']);
    if (!opts || !Number.isInteger(opts.stepSize) || opts.stepSize <= 0) {
      throw new WgtorchError(`StepLR: stepSize must be a positive integer, got ${String(opts?.stepSize)}. Fix: new StepLR(optimizer, { stepSize: 30, gamma: 0.1 }).`);
    }
    this.stepSize = opts.stepSize;
    this.gamma = opts.gamma ?? 0.1;
    this.init();
  }
  protected computeLr(): number[] {
    const lrs = this.groups().map((g) => g.lr);
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return lrs;
    return lrs.map((lr) => lr * this.gamma);
  }
}

/** Cosine annealing from baseLr down to etaMin over TMax steps (and back up after, as PyTorch). */
export class CosineAnnealingLR extends LRScheduler {
  readonly TMax: number;
  readonly etaMin: number;
  constructor(optimizer: Optimizer<object>, opts: { TMax: number; etaMin?: number }) {
    super(optimizer);
    checkOptions('CosineAnnealingLR', opts, ['TMax', 'etaMin']);
    if (!opts || typeof opts.TMax !== 'number' || !(opts.TMax > 0)) {
      throw new WgtorchError(`CosineAnnealingLR: TMax must be a positive number of steps, got ${String(opts?.TMax)}. Fix: new CosineAnnealingLR(optimizer, { TMax: 100 }).`);
    }
    this.TMax = opts.TMax;
    this.etaMin = opts.etaMin ?? 0;
    this.init();
  }
  protected computeLr(): number[] {
    const { TMax: T, etaMin, lastEpoch: e } = this;
    const groups = this.groups();
    if (e === 0) return groups.map((g) => g.lr);
    if ((e - 1 - T) % (2 * T) === 0) {
      return groups.map((g, i) => g.lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    return groups.map(
      (g) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (g.lr - etaMin) + etaMin,
    );
  }
}

/** lr = baseLr * lambda(epoch); one function for all groups or one per group. */
export class LambdaLR extends LRScheduler {
  private readonly lambdas: ((epoch: number) => number)[];
  constructor(optimizer: Optimizer<object>, lrLambda: ((epoch: number) => number) | ((epoch: number) => number)[]) {
    super(optimizer);
    const n = this.baseLrs.length;
    const list = Array.isArray(lrLambda) ? lrLambda : Array.from({ length: n }, () => lrLambda);
    if (list.length !== n || list.some((f) => typeof f !== 'function')) {
      throw new WgtorchError(`LambdaLR: expected a function of the epoch (or ${n}, one per param group), got ${Array.isArray(lrLambda) ? `${lrLambda.length} entries` : typeof lrLambda}.`);
    }
    this.lambdas = list;
    this.init();
  }
  protected computeLr(): number[] {
    return this.baseLrs.map((b, i) => b * this.lambdas[i](this.lastEpoch));
  }
  override stateDict(): Record<string, unknown> {
    const { lambdas: _l, ...rest } = super.stateDict();
    return rest;
  }
}
