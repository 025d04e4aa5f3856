/**
 * nn.Module: subclasses assign parameters and submodules as fields. Instances are
 * callable (`model(x)` runs forward), which takes a function object with the
 * subclass's prototype: JavaScript classes cannot be called otherwise.
 */
import type { Device } from '../runtime/backend.ts';
import { noGrad } from '../eager/grad-mode.ts';
import { checkOptions } from '../eager/options.ts';
import { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape, sameShape } from '../ir/shape.ts';
import { Parameter } from './parameter.ts';

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom');

/** The tracer installs `call` to know which module (path) records each node. */
export const moduleHooks: { call: (<R>(m: Module, run: () => R) => R) | null } = { call: null };

// Declaration merging gives instances the call signature of forward.
export interface Module<In extends unknown[] = any[], Out = any> {
  (...args: In): Out;
}

export class Module<In extends unknown[] = any[], Out = any> {
  declare training: boolean;

  constructor() {
    const self = ((...args: In) => {
      const m = self as unknown as Module<In, Out>;
      return moduleHooks.call ? moduleHooks.call(m, () => m.forward(...args)) : m.forward(...args);
    }) as unknown as Module<In, Out>;
    delete (self as { name?: unknown }).name;
    delete (self as { length?: unknown }).length;
    Object.setPrototypeOf(self, new.target.prototype);
    Object.defineProperty(self, 'training', { value: true, writable: true, enumerable: false });
    return self;
  }

  forward(..._args: In): Out {
    throw new WgtorchError(`${this.constructor.name}: forward is not implemented. Fix: define forward(x) in the subclass.`);
  }

  /** Direct submodules in field order, with their names (`linear1`, or `0`, `1`, ... in Sequential). */
  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) {
      if (v instanceof Module) yield [k, v];
      else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (v[i] instanceof Module) yield [`${k}.${i}`, v[i]];
      }
    }
  }
  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [k, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${k}` : k);
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Parameters with PyTorch's names; a parameter reached twice (shared weights) is listed once. */
  namedParameters(prefix = '', recurse = true): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Tensor>();
    const walk = (m: Module, pre: string) => {
      for (const [k, v] of Object.entries(m)) {
        if (v instanceof Parameter && !seen.has(v)) {
          seen.add(v);
          out.push([pre + k, v]);
        }
      }
      if (!recurse) return;
      for (const [k, c] of m.namedChildren()) walk(c, `${pre}${k}.`);
    };
    walk(this, prefix ? `${prefix}.` : '');
    return out;
  }
  parameters(recurse = true): Parameter[] {
    return this.namedParameters('', recurse).map(([, p]) => p);
  }

  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    checkOptions('zeroGrad', opts, ['setToNone']);
    const setToNone = opts.setToNone ?? true;
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone) p.grad = null;
      else noGrad(() => p.grad!.zero_());
    }
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Moves every parameter (and its grad) to `device`, keeping the Parameter objects. */
  to(device: Device): this {
    for (const p of this.parameters()) {
      if (p.device !== device) p.data = p.data.to(device);
      if (p.grad && p.grad.device !== device) p.grad = p.grad.to(device);
    }
    return this;
  }
  cpu(): this {
    return this.to('cpu');
  }

  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, p] of this.namedParameters()) out[k] = p.detach();
    return out;
  }

  loadStateDict(state: Record<string, Tensor>, opts: { strict?: boolean } = {}): void {
    checkOptions('loadStateDict', opts, ['strict']);
    const strict = opts.strict ?? true;
    const params = new Map(this.namedParameters());
    const missing = [...params.keys()].filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !params.has(k));
    const problems: string[] = [];
    if (strict && missing.length) problems.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpected.length) problems.push(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, p] of params) {
      const v = state[k];
      if (v && !sameShape(v.shape, p.shape)) {
        problems.push(
          `size mismatch for ${k}: copying a param with shape ${fmtShape(v.shape)} from checkpoint, the shape in current model is ${fmtShape(p.shape)}.`,
        );
      }
    }
    if (problems.length) {
      throw new WgtorchError(`Error(s) in loading stateDict for ${this.constructor.name}:\n\t${problems.join('\n\t')}`);
    }
    noGrad(() => {
      for (const [k, p] of params) if (state[k]) p.data.copy_(state[k]);
    });
  }

  /** Extra text inside the parentheses of this module's line when printed. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const kids = [...this.namedChildren()];
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const lines = kids.map(([k, m]) => `  (${k}): ${String(m).split('\n').join('\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }
  [inspectSymbol](): string {
    return this.toString();
  }
}

export { Parameter };
