/**
 * Seed section "2. Pytorch for NN": the same two-layer network on wgtorch
 * tensors, forward and backward still written by hand (no autograd).
 * The seed's `grad_h[h < 0] = 0` is `gradH.maskedFill_(h.lt(0), 0)`.
 */
import * as torch from '../src/index.ts';
import { isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  const steps = opts.steps ?? 500;
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  await ready(device); // the seed's `dtype = torch.FloatTensor`; 'webgpu' plays torch.cuda
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension;
  // H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];

  // Create random input and output data
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });

  // Randomly initialize weights
  const w1 = torch.randn(D_in, H, { device });
  const w2 = torch.randn(H, D_out, { device });

  const learningRate = 1e-6;
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y
    const h = x.mm(w1);
    const hRelu = h.clamp({ min: 0 });
    const yPred = hRelu.mm(w2);

    // Compute and print loss
    const loss = await yPred.sub(y).pow(2).sum().item();
    losses.push(loss);
    log(`${t} ${loss}`);

    // Backprop to compute gradients of w1 and w2 with respect to loss
    const gradYPred = yPred.sub(y).mul(2.0);
    const gradW2 = hRelu.t().mm(gradYPred);
    const gradHRelu = gradYPred.mm(w2.t());
    const gradH = gradHRelu.clone();
    gradH.maskedFill_(h.lt(0), 0);
    const gradW1 = x.t().mm(gradH);

    // Update weights using gradient descent
    w1.sub_(gradW1.mul(learningRate));
    w2.sub_(gradW2.mul(learningRate));
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
