/** Conv2d, MaxPool2d and AvgPool2d modules over the functional forms, with PyTorch's names and init. */
import { empty } from '../eager/factories.ts';
import { checkOptions } from '../eager/options.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import type { Device } from '../runtime/backend.ts';
import { avgPool2d, conv2d, maxPool2d, type Pair } from './functional-conv.ts';
import { linearDefault_ } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

const asPair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);
const fmt = (p: [number, number]) => `(${p[0]}, ${p[1]})`;

export class Conv2d extends Module<[Tensor], Tensor> {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    opts: { stride?: Pair; padding?: Pair; dilation?: Pair; bias?: boolean; device?: Device } = {},
  ) {
    super();
    checkOptions('Conv2d', opts, ['stride', 'padding', 'dilation', 'bias', 'device']);
    for (const [what, v] of [['inChannels', inChannels], ['outChannels', outChannels]] as const) {
      if (!Number.isInteger(v) || v <= 0) throw new WgtorchError(`Conv2d: ${what} must be a positive integer, got ${String(v)}.`);
    }
    this.kernelSize = asPair(kernelSize);
    this.stride = asPair(opts.stride ?? 1);
    this.padding = asPair(opts.padding ?? 0);
    this.dilation = asPair(opts.dilation ?? 1);
    if (!this.kernelSize.every((k) => Number.isInteger(k) && k > 0)) {
      throw new WgtorchError(`Conv2d: kernelSize must be a positive integer or a pair of them, got ${JSON.stringify(kernelSize)}.`);
    }
    const [kh, kw] = this.kernelSize;
    // kaiming_uniform_(a=sqrt(5)) as PyTorch: bound 1/sqrt(fan_in) for weight and bias alike
    const fanIn = inChannels * kh * kw;
    this.weight = new Parameter(empty(outChannels, inChannels, kh, kw, { device: opts.device }));
    linearDefault_(this.weight, fanIn);
    this.bias = opts.bias === false ? null : new Parameter(empty(outChannels, { device: opts.device }));
    if (this.bias) linearDefault_(this.bias, fanIn);
  }
  override forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
  override extraRepr(): string {
    const pad = this.padding[0] || this.padding[1] ? `, padding=${fmt(this.padding)}` : '';
    const dil = this.dilation[0] !== 1 || this.dilation[1] !== 1 ? `, dilation=${fmt(this.dilation)}` : '';
    return `${this.inChannels}, ${this.outChannels}, kernel_size=${fmt(this.kernelSize)}, stride=${fmt(this.stride)}${pad}${dil}${this.bias ? '' : ', bias=False'}`;
  }
}

abstract class Pool2d extends Module<[Tensor], Tensor> {
  readonly stride: Pair;
  readonly padding: Pair;
  constructor(
    readonly kernelSize: Pair,
    opts: { stride?: Pair | null; padding?: Pair } = {},
  ) {
    super();
    checkOptions(new.target.name, opts, ['stride', 'padding']);
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
  }
  override extraRepr(): string {
    return `kernel_size=${JSON.stringify(this.kernelSize)}, stride=${JSON.stringify(this.stride)}, padding=${JSON.stringify(this.padding)}`;
  }
}

export class MaxPool2d extends Pool2d {
  override forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}
export class AvgPool2d extends Pool2d {
  override forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, { stride: this.stride, padding: this.padding });
  }
}
