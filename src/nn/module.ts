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
  /** @internal buffers by name, in registration order (a field of that name reads and writes them) */
  declare _buffers: Map<string, Tensor | null>;
  /** @internal buffers left out of stateDict (registerBuffer(..., { persistent: false })) */
  declare _nonPersistent: Set<string>;

  constructor() {
    const self = ((...args: In) => {
      const m = self as unknown as Module<In, Out>;
      return moduleHooks.call ? moduleHooks.call(m, () => m.forward(...args)) : m.forward(...args);
    }) as unknown as Module<In, Out>;
    delete (self as { name?: unknown }).name;
    delete (self as { length?: unknown }).length;
    Object.setPrototypeOf(self, new.target.prototype);
    Object.defineProperty(self, 'training', { value: true, writable: true, enumerable: false });
    Object.defineProperty(self, '_buffers', { value: new Map<string, Tensor | null>(), enumerable: false });
    Object.defineProperty(self, '_nonPersistent', { value: new Set<string>(), enumerable: false });
    return self;
  }

  forward(..._args: In): Out {
    throw new WgtorchError(`${this.constructor.name}: forward is not implemented. Fix: define forward(x) in the subclass.`);
  }

  /** Direct submodules in field order, with their names (`linear1`, or `0`, `1`, ... in Sequential). */
  *namedChildren(): Generator<[string, Module]> {
    const fields = this as unknown as Record<string, unknown>;
    for (const k of Object.keys(fields)) {
      const v = fields[k];
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
    walkParameters(this, prefix ? `${prefix}.` : '', recurse, out, new Set());
    return out;
  }
  parameters(recurse = true): Parameter[] {
    return this.namedParameters('', recurse).map(([, p]) => p);
  }

  /**
   * Registers state that is not a parameter (BatchNorm's running statistics, a causal mask):
   * it moves with to(), is in stateDict() (unless persistent is false) and is never trained.
   * `this[name]` reads and assigns it.
   */
  registerBuffer(name: string, tensor: Tensor | null, opts: { persistent?: boolean } = {}): void {
    checkOptions('registerBuffer', opts, ['persistent']);
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new WgtorchError(`registerBuffer: buffer name must be a non-empty string without '.', got ${JSON.stringify(name)}.`);
    }
    if (tensor !== null && !(tensor instanceof Tensor)) {
      throw new WgtorchError(`registerBuffer: cannot assign a ${typeof tensor} as buffer '${name}' (a Tensor or null is required).`);
    }
    if (tensor instanceof Parameter) {
      throw new WgtorchError(`registerBuffer: '${name}' is a Parameter. Fix: assign it as a field to make it a parameter, or register tensor.detach().`);
    }
    const own = Object.getOwnPropertyDescriptor(this, name);
    if (!this._buffers.has(name) && ((own && own.value !== undefined) || (!own && name in this))) {
      throw new WgtorchError(`registerBuffer: attribute '${name}' already exists on ${this.constructor.name}. Fix: choose another name.`);
    }
    this._buffers.set(name, tensor);
    if (opts.persistent === false) this._nonPersistent.add(name);
    else this._nonPersistent.delete(name);
    const buffers = this._buffers;
    Object.defineProperty(this, name, {
      get: () => buffers.get(name) ?? null,
      set: (t: Tensor | null) => buffers.set(name, t),
      enumerable: false,
      configurable: true,
    });
  }

  /** Buffers with PyTorch's names (`bn1.running_mean`), module by module as namedParameters. */
  namedBuffers(prefix = '', recurse = true): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    walkBuffers(this, prefix ? `${prefix}.` : '', recurse, out, new Set());
    return out;
  }
  buffers(recurse = true): Tensor[] {
    return this.namedBuffers('', recurse).map(([, b]) => b);
  }

  /** Calls fn on every submodule (children first, as PyTorch), then on this module. */
  apply(fn: (m: Module) => void): this {
    if (typeof fn !== 'function') throw new WgtorchError(`apply: expected a function of a module, got ${typeof fn}.`);
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
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
    for (const m of this.modules()) {
      for (const [k, b] of m._buffers) if (b && b.device !== device) m._buffers.set(k, b.to(device));
    }
    return this;
  }
  cpu(): this {
    return this.to('cpu');
  }

  /** Parameters and persistent buffers under PyTorch's names, module by module (detached, sharing storage). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [k, t] of this.stateEntries()) out[k] = t.detach();
    return out;
  }

  /** What stateDict holds, as the live tensors (parameters and persistent buffers), in PyTorch's order. */
  private stateEntries(): [string, Tensor][] {
    // no de-duplication, as PyTorch's state_dict: a module or weight shared under two names is saved under both
    const out: [string, Tensor][] = [];
    const walk = (m: Module, pre: string) => {
      for (const [k, p] of m.namedParameters('', false)) out.push([pre + k, p]);
      for (const [k, b] of m._buffers) if (b && !m._nonPersistent.has(k)) out.push([pre + k, b]);
      for (const [k, c] of m.namedChildren()) walk(c, `${pre}${k}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copies parameters and buffers from `state` (values convert to each one's device and dtype).
   * Returns the keys that were missing and unexpected; with strict (the default) either is an
   * error, as a shape mismatch always is. Nothing is copied when it throws.
   */
  loadStateDict(state: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    checkOptions('loadStateDict', opts, ['strict']);
    if (state === null || typeof state !== 'object') {
      throw new WgtorchError(`loadStateDict: expected a Record<string, Tensor> (e.g. from stateDict() or torch.load), got ${state === null ? 'null' : typeof state}.`);
    }
    const strict = opts.strict ?? true;
    const own = new Map(this.stateEntries());
    const missingKeys = [...own.keys()].filter((k) => !(k in state));
    const unexpectedKeys = Object.keys(state).filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length) problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, p] of own) {
      const v = state[k];
      if (v === undefined) continue;
      if (!(v instanceof Tensor)) {
        problems.push(`While copying the parameter named "${k}", expected a Tensor from checkpoint but received ${v === null ? 'null' : typeof v}.`);
      } else if (!sameShape(v.shape, p.shape)) {
        problems.push(
          `size mismatch for ${k}: copying a param with shape ${fmtShape(v.shape)} from checkpoint, the shape in current model is ${fmtShape(p.shape)}.`,
        );
      }
    }
    if (problems.length) {
      throw new WgtorchError(`Error(s) in loading stateDict for ${this.constructor.name}:\n\t${problems.join('\n\t')}`);
    }
    noGrad(() => {
      for (const [k, p] of own) if (state[k]) p.data.copy_(state[k]);
    });
    return { missingKeys, unexpectedKeys };
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

// The walks of namedParameters and namedBuffers, as plain functions: every traced call lists
// parameters (an optimizer's, clipGradNorm's, the tracer's names), and a closure per call costs.
function walkParameters(m: Module, pre: string, recurse: boolean, out: [string, Parameter][], seen: Set<Tensor>): void {
  const fields = m as unknown as Record<string, unknown>;
  for (const k of Object.keys(fields)) {
    const v = fields[k];
    if (v instanceof Parameter && !seen.has(v)) {
      seen.add(v);
      out.push([pre + k, v]);
    }
  }
  if (!recurse) return;
  for (const [k, c] of m.namedChildren()) walkParameters(c, `${pre}${k}.`, recurse, out, seen);
}

function walkBuffers(m: Module, pre: string, recurse: boolean, out: [string, Tensor][], seen: Set<Tensor>): void {
  for (const [k, b] of m._buffers) {
    if (b && !seen.has(b)) {
      seen.add(b);
      out.push([pre + k, b]);
    }
  }
  if (!recurse) return;
  for (const [k, c] of m.namedChildren()) walkBuffers(c, `${pre}${k}.`, recurse, out, seen);
}

export { Parameter };
