/**
 * Seed section "Define a new Autograd function": ReLU as a custom
 * torch.autograd.Function with static forward and backward, applied with
 * `MyReLU.apply`.
 */
import * as torch from '../src/index.ts';
import { isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

/**
 * We implement our own custom autograd Function by subclassing
 * torch.autograd.Function and writing the forward and backward passes,
 * which operate on tensors.
 */
export class MyReLU extends torch.autograd.Function {
  /**
   * The forward pass receives the input tensor and returns the output.
   * ctx stores information for the backward pass: ctx.saveForBackward
   * caches tensors for it.
   */
  static forward(ctx: torch.autograd.Context, input: torch.Tensor): torch.Tensor {
    ctx.saveForBackward(input);
    return input.clamp({ min: 0 });
  }

  /**
   * The backward pass receives the gradient of the loss with respect to the
   * output and computes the gradient with respect to the input.
   */
  static backward(ctx: torch.autograd.Context, gradOutput: torch.Tensor): torch.Tensor {
    const [input] = ctx.savedTensors;
    const gradInput = gradOutput.clone();
    gradInput.maskedFill_(input.lt(0), 0); // grad_input[input < 0] = 0
    return gradInput;
  }
}

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  const steps = opts.steps ?? 500;
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  await ready(device);
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension;
  // H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];

  // Random tensors for input and output
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });

  // Random weights that require gradients
  const w1 = torch.randn(D_in, H, { device, requiresGrad: true });
  const w2 = torch.randn(H, D_out, { device, requiresGrad: true });

  const learningRate = 1e-6;
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // To apply our Function we use its apply method, which we call 'relu'.
    const relu = MyReLU.apply;

    // Forward pass, with our custom autograd operation for the ReLU.
    const yPred = relu(x.mm(w1)).mm(w2);

    // Compute and print loss
    const loss = yPred.sub(y).pow(2).sum();
    const value = await loss.item();
    losses.push(value);
    log(`${t} ${value}`);

    // Use autograd to compute the backward pass.
    loss.backward();

    // Update weights using gradient descent
    w1.data.sub_(w1.grad!.data.mul(learningRate));
    w2.data.sub_(w2.grad!.data.mul(learningRate));

    // Manually zero the gradients after updating weights
    w1.grad!.data.zero_();
    w2.grad!.data.zero_();
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
