/** torch.autograd.grad: gradients of outputs with respect to inputs, without touching .grad. */
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { runBackward } from './autograd.ts';
import { apply } from './dispatch.ts';
import { checkOptions } from './options.ts';
import type { Tensor } from './tensor.ts';

export interface GradOptions {
  gradOutputs?: Tensor | Tensor[];
  retainGraph?: boolean;
  allowUnused?: boolean;
}

export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  checkOptions('autograd.grad', opts, ['gradOutputs', 'retainGraph', 'allowUnused']);
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const given = opts.gradOutputs === undefined ? [] : Array.isArray(opts.gradOutputs) ? opts.gradOutputs : [opts.gradOutputs];
  for (const x of ins) {
    if (!x.requiresGrad) throw new WgtorchError(`autograd.grad: one of the differentiated tensors (shape ${fmtShape(x.shape)}) does not require grad.`);
  }
  const seeds = outs.map((o, i) => {
    if (!o.requiresGrad) throw new WgtorchError('autograd.grad: element 0 of tensors does not require grad and does not have a gradFn.');
    if (given[i]) return given[i];
    if (o.numel() !== 1) {
      throw new WgtorchError(
        `autograd.grad: grad can be implicitly created only for scalar outputs (output ${i} has shape ${fmtShape(o.shape)}). Fix: pass { gradOutputs }.`,
      );
    }
    return apply('full', [], { shape: o.shape, value: 1, dtype: 'float32' }, o.device);
  });
  const got = runBackward(outs, seeds, { retainGraph: opts.retainGraph, capture: ins });
  return ins.map((x, i) => {
    const g = got.get(x) ?? null;
    if (!g && !opts.allowUnused) {
      throw new WgtorchError(
        `autograd.grad: input ${i} (shape ${fmtShape(x.shape)}) appears to not have been used in the graph. Fix: pass { allowUnused: true } if this is the desired behavior.`,
      );
    }
    return g;
  });
}
