/** Custom autograd Functions, as in the seed's MyReLU: static forward/backward and `apply`. */
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { ClosureNode } from './closure-node.ts';
import { isGradEnabled, noGrad } from './grad-mode.ts';
import { Tensor } from './tensor.ts';

export class Context {
  private saved: Tensor[] | null = [];
  /** For each forward argument: does it need a gradient? */
  needsInputGrad: boolean[] = [];
  [key: string]: unknown;

  saveForBackward(...tensors: Tensor[]): void {
    this.saved = tensors;
  }
  get savedTensors(): Tensor[] {
    if (this.saved === null) {
      throw new WgtorchError(
        'savedTensors: trying to backward through the graph a second time (or directly access saved tensors after they have already been freed).' +
          ' Fix: specify { retainGraph: true } on the first backward.',
      );
    }
    return this.saved;
  }
  /** @internal */
  _savedList(): Tensor[] {
    return this.saved ?? [];
  }
  /** @internal */
  _free(): void {
    this.saved = null;
  }
}

type FunctionClass = {
  name: string;
  forward(ctx: Context, ...args: any[]): any;
  backward(ctx: Context, ...grads: any[]): any;
};

/**
 * Subclasses define `static forward(ctx, ...inputs)` and `static backward(ctx, gradOutput)`.
 * (They are not declared here, so subclasses need no `override` under noImplicitOverride.)
 */
export class AutogradFunction {
  /** `MyFn.apply(x)`; also works unbound: `const f = MyFn.apply; f(x)`. */
  static get apply(): (...args: any[]) => any {
    const cls = this as unknown as FunctionClass;
    return (...args: unknown[]) => runFunction(cls, args);
  }
}

function runFunction(cls: FunctionClass, args: unknown[]): Tensor {
  for (const m of ['forward', 'backward'] as const) {
    if (typeof cls[m] !== 'function') {
      throw new WgtorchError(`${cls.name}.${m} is not defined. Fix: define static ${m}(ctx, ...) on the class.`);
    }
  }
  const ctx = new Context();
  ctx.needsInputGrad = args.map((a) => a instanceof Tensor && a.requiresGrad);
  let out = noGrad(() => cls.forward(ctx, ...args));
  if (!(out instanceof Tensor)) {
    throw new WgtorchError(`${cls.name}.forward must return a Tensor (got ${typeof out}).`);
  }
  if (!isGradEnabled() || !ctx.needsInputGrad.some(Boolean)) return out;
  if (args.includes(out)) out = out.detach(); // the output must be a new node, not the input itself
  const inputs = args.map((a) => (a instanceof Tensor ? a : 0));
  out.gradFn = new ClosureNode(
    `${cls.name}Backward`,
    inputs,
    (g) => {
      const r = cls.backward(ctx, g);
      const grads = (Array.isArray(r) ? r : [r]) as (Tensor | null | undefined)[];
      return inputs.map((x, i) => {
        const gi = grads[i] ?? null;
        if (gi && typeof x !== 'number' && gi.numel() !== x.numel() && gi.dim() <= x.dim()) {
          throw new WgtorchError(
            `${cls.name}.backward returned a gradient of shape ${fmtShape(gi.shape)} for input ${i} of shape ${fmtShape(x.shape)}.`,
          );
        }
        return gi;
      });
    },
    ctx._savedList(),
    () => ctx._free(),
  );
  return out;
}
