/** The autograd node of a compiled call: its backward runs the compiled backward graph. */
import { Node, edgeOf } from '../eager/autograd.ts';
import type { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';

export class CompiledBackward extends Node {
  private runBackward: ((g: Tensor) => (Tensor | null)[]) | null;
  constructor(targets: Tensor[], run: (g: Tensor) => (Tensor | null)[]) {
    super('CompiledFunctionBackward', targets.map(edgeOf), targets.map((t) => t.shape), []);
    this.runBackward = run;
  }
  protected compute(g: Tensor): (Tensor | null)[] {
    if (!this.runBackward) {
      throw new WgtorchError('CompiledFunctionBackward: trying to backward through the graph a second time. Fix: pass { retainGraph: true } to the first backward.');
    }
    return this.runBackward(g);
  }
  protected release(): void {
    this.runBackward = null;
  }
}
