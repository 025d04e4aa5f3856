/** torch.nn.utils: gradient clipping. */
import { fullLike, zeros } from '../eager/factories.ts';
import { noGrad } from '../eager/grad-mode.ts';
import { checkOptions } from '../eager/options.ts';
import { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';

/**
 * Scales the gradients of `parameters` in place so that their joint norm is at most maxNorm,
 * and returns the norm before clipping as a 0-d tensor on the gradients' device (no readback,
 * so it also traces into a compiled step). As PyTorch 1.13: the norm of the per-gradient norms,
 * and a factor min(1, maxNorm / (total + 1e-6)).
 */
export function clipGradNorm_(
  parameters: Iterable<Tensor> | Tensor,
  maxNorm: number,
  normType: number | { normType?: number } = 2,
): Tensor {
  if (typeof normType === 'object') {
    checkOptions('clipGradNorm_', normType, ['normType']);
    normType = normType.normType ?? 2;
  }
  if (typeof maxNorm !== 'number' || !(maxNorm >= 0)) {
    throw new WgtorchError(`clipGradNorm_: maxNorm must be a non-negative number, got ${String(maxNorm)}.`);
  }
  const p = normType;
  const params = parameters instanceof Tensor ? [parameters] : [...parameters];
  const grads = params.map((t) => t.grad).filter((g): g is Tensor => g !== null);
  return noGrad(() => {
    if (grads.length === 0) return zeros([], { device: params[0]?.device });
    const device = grads[0].device;
    for (const g of grads) {
      if (g.device !== device) {
        throw new WgtorchError(`clipGradNorm_: gradients are on ${device} and ${g.device}. Fix: move the model to one device.`);
      }
    }
    const norms = grads.map((g) => vectorNorm(g, p));
    let total = norms.length === 1 ? norms[0] : norms.slice(1).reduce((acc, n) => combine(acc, n, p), first(norms[0], p));
    if (norms.length > 1) total = finish(total, p);
    const coef = fullLike(total, maxNorm).div(total.add(1e-6)).clamp({ max: 1 });
    for (const g of grads) g.mul_(coef);
    return total;
  });
}

function vectorNorm(g: Tensor, p: number): Tensor {
  if (p === Infinity) return g.abs().amax();
  if (p === 2) return g.mul(g).sum().sqrt();
  if (p === 1) return g.abs().sum();
  return g.abs().pow(p).sum().pow(1 / p);
}
// The total is the p-norm of the per-gradient norms, as torch.norm(torch.stack(norms), p).
function first(n: Tensor, p: number): Tensor {
  return p === Infinity ? n : p === 1 ? n : p === 2 ? n.mul(n) : n.pow(p);
}
function combine(acc: Tensor, n: Tensor, p: number): Tensor {
  if (p === Infinity) return acc.max(n);
  return acc.add(first(n, p));
}
function finish(acc: Tensor, p: number): Tensor {
  if (p === Infinity || p === 1) return acc;
  return p === 2 ? acc.sqrt() : acc.pow(1 / p);
}
