/**
 * Seed section "Autograd": the forward pass on tensors that require grad,
 * `loss.backward()` computes the gradients, and the update goes through
 * `w.data` (a detached view sharing storage), as the seed does.
 * (PyTorch's old `Variable` wrapper is gone: tensors take `requiresGrad`.)
 */
import * as torch from '../src/index.ts';
import { isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  const steps = opts.steps ?? 500;
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  await ready(device);
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension;
  // H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];

  // Random tensors for input and output; requiresGrad false (the default):
  // we do not need gradients with respect to the data.
  const x = torch.randn(N, D_in, { device, requiresGrad: false });
  const y = torch.randn(N, D_out, { device, requiresGrad: false });

  // Random weights; requiresGrad true: we want gradients with respect to these.
  const w1 = torch.randn(D_in, H, { device, requiresGrad: true });
  const w2 = torch.randn(H, D_out, { device, requiresGrad: true });

  const learningRate = 1e-6;
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: the same operations as before, but no intermediate
    // values kept by hand, since we do not write the backward pass.
    const yPred = x.mm(w1).clamp({ min: 0 }).mm(w2);

    // Compute and print loss (a 0-d tensor; item() reads its value)
    const loss = yPred.sub(y).pow(2).sum();
    const value = await loss.item();
    losses.push(value);
    log(`${t} ${value}`);

    // Autograd computes the gradient of loss with respect to every tensor
    // with requiresGrad; afterwards w1.grad and w2.grad hold them.
    loss.backward();

    // Update weights using gradient descent: w.data is the weight's storage
    // without autograd history.
    w1.data.sub_(w1.grad!.data.mul(learningRate));
    w2.data.sub_(w2.grad!.data.mul(learningRate));

    // Manually zero the gradients after updating weights
    w1.grad!.data.zero_();
    w2.grad!.data.zero_();
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
