import { Tensor } from '../eager/tensor.ts';

/** A tensor that a Module registers as a parameter; requires grad by default and shares the given storage. */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    super(data._storage, [...data.shape], data.dtype);
    this.requiresGrad = requiresGrad;
  }
}
