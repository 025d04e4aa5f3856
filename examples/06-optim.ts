/**
 * Seed section "optim": the same nn.Sequential model, now updated by an
 * optimizer from torch.optim (Adam, lr 1e-4) instead of by hand.
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

  // The model and the loss function from the nn package.
  const model = new torch.nn.Sequential(
    new torch.nn.Linear(D_in, H),
    new torch.nn.ReLU(),
    new torch.nn.Linear(H, D_out),
  ).to(device);
  const lossFn = new torch.nn.MSELoss({ sizeAverage: false });

  // An optimizer that updates the model's weights for us: Adam here; the
  // first argument says which tensors it should update.
  const learningRate = 1e-4;
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: learningRate });
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y by passing x to the model.
    const yPred = model(x);

    // Compute and print loss.
    const loss = lossFn(yPred, y);
    const value = await loss.item();
    losses.push(value);
    log(`${t} ${value}`);

    // Before the backward pass, zero the gradients of the tensors the
    // optimizer updates: backward() accumulates into .grad.
    optimizer.zeroGrad();

    // Backward pass: gradient of the loss with respect to the parameters.
    loss.backward();

    // The optimizer's step updates the parameters.
    optimizer.step();
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
