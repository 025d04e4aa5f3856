/** Parameter initialisers (torch.nn.init), drawing from the global generator. */
import { noGrad } from '../eager/grad-mode.ts';
import { rand, randn } from '../eager/factories.ts';
import type { Tensor } from '../eager/tensor.ts';

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  noGrad(() => t.data.copy_(rand(t.shape, { device: t.device }).mul(b - a).add(a)));
  return t;
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  noGrad(() => t.data.copy_(randn(t.shape, { device: t.device }).mul(std).add(mean)));
  return t;
}
export function zeros_(t: Tensor): Tensor {
  noGrad(() => t.data.zero_());
  return t;
}
export function constant_(t: Tensor, v: number): Tensor {
  noGrad(() => t.data.fill_(v));
  return t;
}
/** kaiming_uniform_ with a = sqrt(5), which nn.Linear uses: bound = 1/sqrt(fan_in). */
export function linearDefault_(t: Tensor, fanIn: number): Tensor {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return uniform_(t, -bound, bound);
}
