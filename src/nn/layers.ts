/** The layers of torch.nn that the seed uses, and their common siblings. */
import { empty } from '../eager/factories.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Device } from '../runtime/backend.ts';
import * as F from './functional.ts';
import { linearDefault_, normal_ } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

export class Linear extends Module<[Tensor], Tensor> {
  weight: Parameter;
  bias: Parameter | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; device?: Device } = {},
  ) {
    super();
    checkOptions('Linear', opts, ['bias', 'device']);
    this.weight = new Parameter(empty(outFeatures, inFeatures, { device: opts.device }));
    linearDefault_(this.weight, inFeatures);
    this.bias = opts.bias === false ? null : new Parameter(empty(outFeatures, { device: opts.device }));
    if (this.bias) linearDefault_(this.bias, inFeatures);
  }
  override forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias ? 'True' : 'False'}`;
  }
}

export class ReLU extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x.relu();
  }
}
export class GELU extends Module<[Tensor], Tensor> {
  readonly approximate: 'none' | 'tanh';
  constructor(opts: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    checkOptions('GELU', opts, ['approximate']);
    this.approximate = opts.approximate ?? 'none';
  }
  override forward(x: Tensor): Tensor {
    return x.gelu({ approximate: this.approximate });
  }
  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}
export class SiLU extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x.silu();
  }
}

/** A lookup table of `num` vectors of size `dim` (initialised N(0, 1), as PyTorch); input: int32 indices. */
export class Embedding extends Module<[Tensor], Tensor> {
  weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { device?: Device } = {},
  ) {
    super();
    checkOptions('Embedding', opts, ['device']);
    for (const [what, v] of [['numEmbeddings', numEmbeddings], ['embeddingDim', embeddingDim]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new WgtorchError(`Embedding: ${what} must be a positive integer, got ${String(v)}.`);
    }
    this.weight = new Parameter(empty(numEmbeddings, embeddingDim, { device: opts.device }));
    normal_(this.weight);
  }
  override forward(index: Tensor): Tensor {
    return F.embedding(index, this.weight);
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}`;
  }
}

export class Tanh extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x.tanh();
  }
}
export class Sigmoid extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}
export class Softmax extends Module<[Tensor], Tensor> {
  readonly dim: number;
  constructor(dim: number | { dim?: number } = -1) {
    super();
    this.dim = F.dimArg('Softmax', dim);
  }
  override forward(x: Tensor): Tensor {
    return x.softmax(this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
export class LogSoftmax extends Module<[Tensor], Tensor> {
  readonly dim: number;
  constructor(dim: number | { dim?: number } = -1) {
    super();
    this.dim = F.dimArg('LogSoftmax', dim);
  }
  override forward(x: Tensor): Tensor {
    return x.logSoftmax(this.dim);
  }
}
/** Flattens dims startDim..endDim into one (the tutorial's Flatten(0, 1) turns [N, 1] into [N]). */
export class Flatten extends Module<[Tensor], Tensor> {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
    if (!Number.isInteger(startDim) || !Number.isInteger(endDim)) {
      throw new WgtorchError(`Flatten: startDim and endDim must be integers, got ${String(startDim)} and ${String(endDim)}.`);
    }
  }
  override forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** Returns its input unchanged (a placeholder where a layer is optional). */
export class Identity extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x;
  }
}
export class Dropout extends Module<[Tensor], Tensor> {
  constructor(readonly p = 0.5) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Holds submodules in a list, named 0, 1, ... (no forward of its own). */
export class ModuleList<In extends unknown[] = any[], Out = any> extends Module<In, Out> {
  constructor(modules: Module[] = []) {
    super();
    modules.forEach((m, i) => ((this as unknown as Record<string, Module>)[String(i)] = m));
  }
  override get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    return this.children().at(i)!;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

/** Runs its modules in order; children are named 0, 1, 2, ... */
export class Sequential extends ModuleList<[Tensor], Tensor> {
  constructor(...modules: Module[]) {
    super(modules);
  }
  override forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.children()) h = m(h);
    return h;
  }
}

/**
 * Holds submodules by name, in insertion order; the names are the state-dict prefixes
 * (`blocks.attn.weight`). `get`, `set`, `has`, `delete`, `keys`, `values`, `entries` as a Map.
 */
export class ModuleDict<M extends Module = Module> extends Module {
  constructor(modules: Record<string, M> | Iterable<[string, M]> = {}) {
    super();
    const entries = Symbol.iterator in Object(modules) ? [...(modules as Iterable<[string, M]>)] : Object.entries(modules);
    for (const [k, m] of entries) this.set(k, m);
  }
  set(key: string, module: M): this {
    if (typeof key !== 'string' || key === '' || key.includes('.')) {
      throw new WgtorchError(`ModuleDict: module name must be a non-empty string without '.', got ${JSON.stringify(key)}.`);
    }
    if (!(module instanceof Module)) throw new WgtorchError(`ModuleDict: '${key}' must be a Module, got ${typeof module}.`);
    if (!Object.prototype.hasOwnProperty.call(this, key) && key in this) {
      throw new WgtorchError(`ModuleDict: the name '${key}' is taken by a ModuleDict method or property. Fix: choose another name.`);
    }
    (this as unknown as Record<string, M>)[key] = module;
    return this;
  }
  get(key: string): M | undefined {
    return this.has(key) ? (this as unknown as Record<string, M>)[key] : undefined;
  }
  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this, key) && (this as unknown as Record<string, unknown>)[key] instanceof Module;
  }
  delete(key: string): boolean {
    if (!this.has(key)) return false;
    delete (this as unknown as Record<string, M>)[key];
    return true;
  }
  keys(): string[] {
    return [...this.namedChildren()].map(([k]) => k);
  }
  values(): M[] {
    return this.children() as M[];
  }
  entries(): [string, M][] {
    return [...this.namedChildren()] as [string, M][];
  }
  items(): [string, M][] {
    return this.entries();
  }
  get size(): number {
    return this.keys().length;
  }
  [Symbol.iterator](): Iterator<string> {
    return this.keys()[Symbol.iterator]();
  }
}
