/**
 * The README's example, trained in the page: the seed's TwoLayerNet with Adam (lr 1e-4),
 * MSE summed over the batch, on data from manualSeed(0); the same setup as `npm start`
 * (demo/main.ts), so a page and a Node run print the same losses.
 */
import * as torch from 'wgtorch';

export class TwoLayerNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  linear1: torch.nn.Linear;
  linear2: torch.nn.Linear;
  constructor(D_in: number, H: number, D_out: number) {
    super();
    this.linear1 = new torch.nn.Linear(D_in, H);
    this.linear2 = new torch.nn.Linear(H, D_out);
  }
  override forward(x: torch.Tensor): torch.Tensor {
    const hRelu = this.linear1(x).clamp({ min: 0 });
    return this.linear2(hRelu);
  }
}

export type Mode = 'eager' | 'compiled';

export interface Trainer {
  device: torch.Device;
  mode: Mode;
  /** One training step; resolves to the loss of the forward pass before its update. */
  step(): Promise<number>;
  /** The compiled step (null in eager mode): its graphs() feed the inspector. */
  compiled: torch.Compiled<() => torch.Tensor> | null;
  model: TwoLayerNet;
}

export const SIZES = { N: 64, D_in: 1000, H: 100, D_out: 10 };

export function makeTrainer(device: torch.Device, mode: Mode): Trainer {
  torch.manualSeed(0);
  const { N, D_in, H, D_out } = SIZES;
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });
  const model = new TwoLayerNet(D_in, H, D_out).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });
  const trainStep = () => {
    const loss = lossFn(model(x), y);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss;
  };
  const compiled = mode === 'compiled' ? torch.compile(trainStep) : null;
  let calls = 0;
  return {
    device,
    mode,
    compiled,
    model,
    // a compiled step's first call is warmup(): the pipelines are created concurrently
    // and the matmul autotuner finishes before the timed steps
    step: async () => (compiled && calls++ === 0 ? await compiled.warmup() : (compiled ?? trainStep)()).item(),
  };
}
