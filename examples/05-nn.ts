/**
 * Seed section "torch.nn": the model as an nn.Sequential of layers, the
 * loss from nn.MSELoss, and a hand-written gradient-descent update of
 * every parameter.
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

  // Random tensors for input and output
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device, requiresGrad: false });

  // The model as a sequence of layers. nn.Sequential applies its modules in
  // order; each Linear computes output = input @ weight^T + bias and holds
  // its weight and bias as parameters.
  const model = new torch.nn.Sequential(
    new torch.nn.Linear(D_in, H),
    new torch.nn.ReLU(),
    new torch.nn.Linear(H, D_out),
  ).to(device);

  // Mean squared error, summed rather than averaged (the seed's legacy
  // size_average=False; `{ reduction: 'sum' }` says the same).
  const lossFn = new torch.nn.MSELoss({ sizeAverage: false });

  const learningRate = 1e-4;
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: modules are callable, so model(x) runs its forward.
    const yPred = model(x);

    // Compute and print loss.
    const loss = lossFn(yPred, y);
    const value = await loss.item();
    losses.push(value);
    log(`${t} ${value}`);

    // Zero the gradients before running the backward pass.
    model.zeroGrad();

    // Backward pass: the gradient of the loss with respect to every
    // learnable parameter of the model.
    loss.backward();

    // Update the weights using gradient descent; each parameter is a tensor,
    // so we update its data with its gradient, as before.
    torch.noGrad(() => {
      for (const param of model.parameters()) param.data.sub_(param.grad!.data.mul(learningRate));
    });
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
