/**
 * The main demo (`npm start`): the seed's TwoLayerNet (a custom nn.Module of
 * two Linear layers with a clamp(min=0) between them) trained with Adam,
 * lr 1e-4, MSE summed over the batch, as in the seed's optim section.
 * Prints progress every 50 steps, then the loss curve, the time per step
 * and the device.
 *
 *   npm start                        # 500 steps on the cpu
 *   npm start -- --steps 100
 *   npm start -- --device webgpu     # or WGTORCH_DEVICE=webgpu npm start
 */
import * as torch from '../src/index.ts';
import { isMain, parseCli } from '../examples/_cli.ts';
import { TwoLayerNet } from '../examples/07-custom-module.ts';
import { plotLossCurve } from './plot.ts';

export interface DemoResult {
  losses: number[];
  msPerStep: number;
  device: torch.Device;
}

export async function runDemo(opts: { steps?: number; device?: torch.Device; log?: (line: string) => void } = {}): Promise<DemoResult> {
  const steps = opts.steps ?? 500;
  const device = opts.device ?? 'cpu';
  const log = opts.log ?? console.log;
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension; H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });

  const model = new TwoLayerNet(D_in, H, D_out).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });

  log(`wgtorch demo: TwoLayerNet(${D_in} -> ${H} -> ${D_out}), Adam lr 1e-4, MSE (sum), batch ${N}, ${steps} steps on '${device}'`);
  const losses: number[] = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) {
    const loss = lossFn(model(x), y);
    const value = await loss.item();
    losses.push(value);
    if (t % 50 === 0 || t === steps - 1) log(`step ${String(t).padStart(4)}  loss ${value.toExponential(4)}`);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
  }
  // Wait for the last update too (on a GPU, reading a value waits for the queued work).
  await model.linear2.weight.toArray();
  const msPerStep = (performance.now() - t0) / steps;
  return { losses, msPerStep, device };
}

async function cli(): Promise<void> {
  const { device, steps } = parseCli();
  const { losses, msPerStep } = await runDemo({ device, steps });
  console.log('');
  console.log('loss (log scale)');
  for (const line of plotLossCurve(losses, { width: 60, height: 15 })) console.log(line);
  console.log('');
  console.log(`loss: ${losses[0].toExponential(4)} -> ${losses[losses.length - 1].toExponential(4)} in ${losses.length} steps`);
  console.log(`time: ${msPerStep.toFixed(2)} ms per step (forward, backward, Adam step; eager)`);
  console.log(`device: ${device}`);
}

if (isMain(import.meta.url)) {
  cli().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
