/**
 * Seed section "Custom nn Modules": the two-layer network as a subclass of
 * nn.Module, with its layers as fields and a forward method; trained with
 * SGD (lr 1e-4) as in the seed.
 */
import * as torch from '../src/index.ts';
import { isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

export class TwoLayerNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  linear1: torch.nn.Linear;
  linear2: torch.nn.Linear;

  /** In the constructor we instantiate two nn.Linear modules and assign them as fields. */
  constructor(D_in: number, H: number, D_out: number) {
    super();
    this.linear1 = new torch.nn.Linear(D_in, H);
    this.linear2 = new torch.nn.Linear(H, D_out);
  }

  /**
   * forward takes the input tensor and returns the output tensor; it may
   * use the modules defined in the constructor and any tensor operations.
   */
  override forward(x: torch.Tensor): torch.Tensor {
    const hRelu = this.linear1(x).clamp({ min: 0 });
    const yPred = this.linear2(hRelu);
    return yPred;
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
  const y = torch.randn(N, D_out, { device, requiresGrad: false });

  // Construct our model by instantiating the class defined above
  const model = new TwoLayerNet(D_in, H, D_out).to(device);

  // The loss function and an optimizer. model.parameters() holds the
  // learnable parameters of the two nn.Linear fields of the model.
  const criterion = new torch.nn.MSELoss({ sizeAverage: false });
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 1e-4 });
  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y by passing x to the model
    const yPred = model(x);

    // Compute and print loss
    const loss = criterion(yPred, y);
    const value = await loss.item();
    losses.push(value);
    log(`${t} ${value}`);

    // Zero gradients, perform a backward pass, and update the weights.
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
