/** The layers of torch.nn that the seed uses, and their common siblings. */
import { empty } from '../eager/factories.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import type { Device } from '../runtime/backend.ts';
import * as F from './functional.ts';
import { linearDefault_ } from './init.ts';
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
  constructor(readonly dim: number = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return x.softmax(this.dim);
  }
  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}
export class LogSoftmax extends Module<[Tensor], Tensor> {
  constructor(readonly dim: number = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return x.logSoftmax(this.dim);
  }
}
export class Flatten extends Module<[Tensor], Tensor> {
  override forward(x: Tensor): Tensor {
    return x.flatten(1);
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
