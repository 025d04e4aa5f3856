/** The optimizer base: parameter groups, per-parameter state, zeroGrad, stateDict. */
import { noGrad } from '../eager/grad-mode.ts';
import { observers } from '../eager/persistent.ts';
import { withTemporaries } from '../eager/temporaries.ts';
import { checkOptions } from '../eager/options.ts';
import { Tensor } from '../eager/tensor.ts';
import { recordUndo, undoActive } from '../eager/undo.ts';
import { WgtorchError } from '../ir/errors.ts';

export type ParamGroup<O> = O & { params: Tensor[] };
export type ParamsInput<O> = Iterable<Tensor> | (Partial<O> & { params: Iterable<Tensor> })[];
export type State = Record<string, Tensor | number | boolean>;

export abstract class Optimizer<O extends object> {
  readonly paramGroups: ParamGroup<O>[] = [];
  readonly state = new Map<Tensor, State>();

  constructor(
    params: ParamsInput<O>,
    readonly defaults: O,
    opts: Partial<O>,
  ) {
    const name = new.target.name;
    checkOptions(name, opts, Object.keys(defaults));
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new WgtorchError(`${name}: optimizer got an empty parameter list.`);
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] }] : (list as (Partial<O> & { params: Iterable<Tensor> })[]);
    const seen = new Set<Tensor>();
    for (const g of groups) {
      checkOptions(`${name} param group`, g, ['params', ...Object.keys(defaults)]);
      const group = { ...defaults, ...opts, ...g, params: [...g.params] } as ParamGroup<O>;
      for (const p of group.params) {
        if (!(p instanceof Tensor)) throw new WgtorchError(`${name}: params must be tensors.`);
        if (seen.has(p)) throw new WgtorchError(`${name}: some parameters appear in more than one parameter group.`);
        seen.add(p);
      }
      this.validate(group);
      this.paramGroups.push(group);
    }
  }

  protected validate(group: ParamGroup<O>): void {
    const g = group as unknown as Record<string, unknown>;
    if (typeof g.lr === 'number' && g.lr < 0) throw new WgtorchError(`${this.constructor.name}: invalid learning rate: ${g.lr}.`);
  }

  /** Updates one parameter whose gradient is `grad` (never null: those are skipped). */
  protected abstract update(p: Tensor, grad: Tensor, group: ParamGroup<O>, state: State): void;

  step(): void {
    observers.optimizerStep?.(this);
    if (undoActive()) {
      // a compiled call that fails after this step must leave the state as it was
      const state = [...this.state].map(([p, st]) => [p, { ...st }] as const);
      const groups = this.paramGroups.map((g) => ({ ...g }));
      recordUndo(() => {
        this.state.clear();
        for (const [p, st] of state) this.state.set(p, st);
        groups.forEach((g, i) => Object.assign(this.paramGroups[i]!, g));
      });
    }
    // the update's intermediates are freed when it returns; what it keeps is in the state
    const kept = () => [...this.state.values()].flatMap((st) => Object.values(st).filter((v): v is Tensor => v instanceof Tensor));
    withTemporaries(
      () =>
        noGrad(() => {
          for (const group of this.paramGroups) {
            for (const p of group.params) {
              if (!p.grad) continue;
              let state = this.state.get(p);
              if (!state) this.state.set(p, (state = {}));
              this.update(p, p.grad, group, state);
            }
          }
        }),
      kept,
    );
  }

  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    checkOptions('zeroGrad', opts, ['setToNone']);
    const setToNone = opts.setToNone ?? true;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        if (setToNone) p.grad = null;
        else noGrad(() => p.grad!.zero_());
      }
    }
  }

  /** Options and state by parameter index, as PyTorch lays it out. Tensors are shared, not copied. */
  stateDict(): { state: Record<number, State>; paramGroups: Record<string, unknown>[] } {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return { ...options, params: params.map((p) => (index.has(p) ? index.get(p)! : (index.set(p, index.size), index.size - 1))) };
    });
    const state: Record<number, State> = {};
    for (const [p, s] of this.state) if (index.has(p)) state[index.get(p)!] = { ...s };
    return { state, paramGroups };
  }

  loadStateDict(sd: { state: Record<number, State>; paramGroups: Record<string, unknown>[] }): void {
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new WgtorchError('loadStateDict: loaded state dict has a different number of parameter groups.');
    }
    const params: Tensor[] = [];
    sd.paramGroups.forEach((g, i) => {
      const mine = this.paramGroups[i];
      const ids = g.params as number[];
      if (ids.length !== mine.params.length) {
        throw new WgtorchError("loadStateDict: loaded state dict contains a parameter group that doesn't match the size of the optimizer's group.");
      }
      const { params: _p, ...options } = g;
      Object.assign(mine, options);
      ids.forEach((id, j) => (params[id] = mine.params[j]));
    });
    this.state.clear();
    for (const [id, s] of Object.entries(sd.state)) {
      const p = params[Number(id)];
      const copy: State = {};
      for (const [k, v] of Object.entries(s)) copy[k] = v instanceof Tensor ? noGrad(() => v.to(p.device).clone()) : v;
      this.state.set(p, copy);
    }
  }
}
