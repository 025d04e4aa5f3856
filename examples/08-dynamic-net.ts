/**
 * Seed section "Control flow + weight sharing": DynamicNet picks a random
 * depth (0, 1, 2 or 3) on every forward pass and reuses the same
 * middle_linear module that many times, so those layers share weights.
 * Plain TypeScript control flow builds a new graph each call.
 */
import * as torch from '../src/index.ts';
import { isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

/** Python's random.randint(a, b) (both ends included), drawn from wgtorch's seeded generator. */
function randint(a: number, b: number): number {
  return torch.randint(a, b + 1, [], { device: 'cpu' }).itemSync();
}

export class DynamicNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  inputLinear: torch.nn.Linear;
  middleLinear: torch.nn.Linear;
  outputLinear: torch.nn.Linear;
  /** The depths the forward passes chose, for inspection. */
  depths: number[] = [];

  /** In the constructor we construct three nn.Linear instances that we use in the forward pass. */
  constructor(D_in: number, H: number, D_out: number) {
    super();
    this.inputLinear = new torch.nn.Linear(D_in, H);
    this.middleLinear = new torch.nn.Linear(H, H);
    this.outputLinear = new torch.nn.Linear(H, D_out);
  }

  /**
   * For the forward pass we randomly choose 0, 1, 2 or 3 and reuse the
   * middleLinear module that many times to compute hidden representations.
   * Each forward builds a dynamic graph, so ordinary loops and conditionals
   * are fine, and reusing one module several times is safe: the weights
   * are shared.
   */
  override forward(x: torch.Tensor): torch.Tensor {
    let hRelu = this.inputLinear(x).clamp({ min: 0 });
    const depth = randint(0, 3);
    this.depths.push(depth);
    for (let i = 0; i < depth; i++) hRelu = this.middleLinear(hRelu).clamp({ min: 0 });
    const yPred = this.outputLinear(hRelu);
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
  const model = new DynamicNet(D_in, H, D_out).to(device);

  // Training this strange model with vanilla SGD is hard, so we use momentum.
  const criterion = new torch.nn.MSELoss({ sizeAverage: false });
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 1e-4, momentum: 0.9 });
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
