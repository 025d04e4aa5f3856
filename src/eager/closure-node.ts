import { Node, edgeOf } from './autograd.ts';
import type { Tensor } from './tensor.ts';

/** A backward node whose gradient is a JavaScript closure (device moves, custom Functions). */
export class ClosureNode extends Node {
  private fn: ((g: Tensor) => (Tensor | null)[]) | null;
  constructor(
    name: string,
    inputs: (Tensor | number)[],
    fn: (g: Tensor) => (Tensor | null)[],
    saved: Tensor[] = [],
    private readonly onRelease?: () => void,
  ) {
    super(
      name,
      inputs.map(edgeOf),
      inputs.map((x) => (typeof x === 'number' ? null : x.shape)),
      saved.map((t) => ({ tensor: t, version: t._storage.version, origin: t.gradFn ? `output 0 of ${t.gradFn.name}` : 'a leaf tensor' })),
    );
    this.fn = fn;
  }
  protected compute(g: Tensor): (Tensor | null)[] {
    return this.fn!(g);
  }
  protected release(): void {
    this.fn = null;
    this.onRelease?.();
  }
}
