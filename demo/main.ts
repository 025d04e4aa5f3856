/**
 * The main demo (`npm start`): the seed's TwoLayerNet (a custom nn.Module of
 * two Linear layers with a clamp(min=0) between them) trained with Adam,
 * lr 1e-4, MSE summed over the batch, as in the seed's optim section.
 * Prints progress every 50 steps, then the loss curve, the time per step
 * and the device.
 *
 * Trains the model twice, side by side: eagerly, and with the whole training step
 * compiled by torch.compile into a few fused kernels (WGSL on webgpu; generated
 * JavaScript and WebAssembly SIMD matmuls on the cpu), and prints both times. On
 * webgpu the compiled run's first steps run eagerly while its kernels compile in the
 * background (eagerWhileCompiling), and it says from which step it ran compiled.
 *
 *   npm start                        # 500 steps on webgpu when an adapter exists, else cpu
 *   WGTORCH_NO_WEBGPU=1 npm start    # as on a machine without an adapter
 *   npm start -- --steps 100
 *   npm start -- --device cpu        # or WGTORCH_DEVICE=cpu npm start
 */
import * as torch from '../src/index.ts';
import { isMain, parseCli } from '../examples/_cli.ts';
import { TwoLayerNet } from '../examples/07-custom-module.ts';
import { plotLossCurve } from './plot.ts';
import { rerunWithQuietDawn } from './quiet-dawn.ts';

export interface DemoResult {
  losses: number[];
  msPerStep: number;
  device: torch.Device;
  /** compiled: how many first steps ran eagerly while the kernels compiled (all of them if it never switched) */
  eagerSteps: number;
}

export async function runDemo(
  opts: { steps?: number; device?: torch.Device; log?: (line: string) => void; compiled?: boolean } = {},
): Promise<DemoResult> {
  const steps = opts.steps ?? 500;
  const device = opts.device ?? 'cpu';
  const log = opts.log ?? console.log;
  if (device === 'webgpu') await torch.webgpu.init();
  torch.manualSeed(0);

  // N is batch size; D_in is input dimension; H is hidden dimension; D_out is output dimension.
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  const x = torch.randn(N, D_in, { device });
  const y = torch.randn(N, D_out, { device });

  const model = new TwoLayerNet(D_in, H, D_out).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });

  const how = opts.compiled ? 'compiled' : 'eager';
  log(`wgtorch demo (${how}): TwoLayerNet(${D_in} -> ${H} -> ${D_out}), Adam lr 1e-4, MSE (sum), batch ${N}, ${steps} steps on '${device}'`);
  // One training step. Compiled, it becomes one graph: forward, backward and the Adam update.
  const trainStep = () => {
    const loss = lossFn(model(x), y);
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step();
    return loss;
  };
  // Compiled on webgpu, the first steps run eagerly while the fused kernels compile in the
  // background (a cold fused kernel takes lavapipe's LLVM seconds); the default matmul
  // variants are used (no autotuning on a demo's first steps: it compiles every candidate).
  const compiled = opts.compiled ? torch.compile(trainStep, { eagerWhileCompiling: true, autotune: false }) : null;
  const step = compiled ?? trainStep;
  const losses: number[] = [];
  // The first steps build GPU pipelines (and, compiled, the graph): time the steady state after them.
  const warmup = Math.min(5, steps - 1);
  let t0 = performance.now();
  let firstMs = 0;
  /** the first step that ran compiled, and when it ended */
  let switched = compiled ? -1 : 0;
  let tSwitched = 0;
  for (let t = 0; t < steps; t++) {
    if (t === warmup) {
      firstMs = performance.now() - t0;
      t0 = performance.now();
    }
    // the loss is of the forward pass before this step's update, as in the seed
    const value = await step().item();
    losses.push(value);
    if (switched < 0 && (compiled!.graphs()[0]?.stats.calls ?? 0) > 0) {
      switched = t;
      tSwitched = performance.now();
    }
    if (t % 50 === 0 || t === steps - 1) log(`step ${String(t).padStart(4)}  loss ${value.toExponential(4)}`);
  }
  if (compiled) {
    const g = compiled.graphs()[0];
    const where = device === 'webgpu' ? `in ${g.stats.dispatches} dispatches per step` : 'per step on the cpu (generated JavaScript, WebAssembly SIMD matmuls)';
    log(`compiled: ${g.stats.fusedKernels} fused kernels ${where} (${g.kernels.map((k) => k.name).join(', ')}); graph compiled in ${g.stats.compileMs.toFixed(0)} ms`);
    if (switched > 0) log(`steps 0-${switched - 1} ran eagerly while the kernels compiled in the background; compiled from step ${switched}`);
    else if (switched < 0) log(`all ${steps} steps ran eagerly: the kernels were still compiling in the background`);
  }
  const building =
    device === 'webgpu' ? (compiled ? 'tracing the graph, eager steps while its kernels compile' : 'building GPU pipelines') : compiled ? 'tracing and compiling the graph' : 'first calls';
  log(`first ${warmup} steps (${building}): ${firstMs.toFixed(0)} ms`);
  // Wait for the last update too (on a GPU, reading a value waits for the queued work).
  await model.linear2.weight.toArray();
  const end = performance.now();
  // compiled: the steps after the first compiled one (its pipelines come from the driver's cache)
  const timedFrom = compiled && switched > 0 && steps - switched - 1 > 0 ? { t: tSwitched, n: steps - switched - 1 } : { t: t0, n: steps - warmup };
  const msPerStep = (end - timedFrom.t) / timedFrom.n;
  return { losses, msPerStep, device, eagerSteps: switched < 0 ? steps : switched };
}

async function cli(): Promise<void> {
  const explicit = process.argv.some((a) => a.startsWith('--device')) || !!process.env.WGTORCH_DEVICE;
  const { device: asked, steps } = parseCli();
  // the adapter probe makes Dawn print two notices natively: run as a child with them filtered out
  const filtered = rerunWithQuietDawn((!explicit || asked === 'webgpu') && process.env.WGTORCH_NO_WEBGPU !== '1');
  if (filtered) {
    process.exitCode = await filtered;
    return;
  }
  const device: torch.Device = explicit ? asked : (await torch.webgpu.isAvailable()) ? 'webgpu' : 'cpu';
  if (!explicit && device === 'cpu') {
    console.log('(no WebGPU adapter found: training on the cpu, eagerly and compiled; for the GPU see scripts/setup-webgpu.sh)');
  }
  const eager = await runDemo({ device, steps });
  console.log('');
  const compiled = await runDemo({ device, steps, compiled: true });
  console.log('');
  console.log('loss (log scale, compiled run)');
  for (const line of plotLossCurve(compiled.losses, { width: 60, height: 15 })) console.log(line);
  console.log('');
  const { losses } = compiled;
  console.log(`loss: ${losses[0].toExponential(4)} -> ${losses[losses.length - 1].toExponential(4)} in ${losses.length} steps`);
  // Eager and compiled sum in different orders, so float32 rounding differs from the first
  // step; Adam compounds it, as it does between PyTorch on CPU and on CUDA. Compare the early
  // steps tightly, and show how far apart the runs drift by the end.
  const rel = (i: number) => Math.abs(eager.losses[i] - losses[i]) / Math.max(Math.abs(eager.losses[i]), 1e-30);
  const early = Math.min(100, losses.length);
  const worstEarly = Math.max(...Array.from({ length: early }, (_, i) => rel(i)));
  const worst = Math.max(...losses.map((_, i) => rel(i)));
  console.log(
    `eager and compiled losses ${worstEarly <= 1e-4 ? 'agree' : 'DIFFER'} over the first ${early} steps (largest relative difference ${worstEarly.toExponential(1)}, float32 tolerance 1e-4); over all ${losses.length} steps the rounding compounds to ${worst.toExponential(1)}`,
  );
  if (compiled.eagerSteps >= losses.length) {
    console.log(`time per step (forward, backward, Adam): eager ${eager.msPerStep.toFixed(2)} ms; the compiled run ran every step eagerly while its kernels compiled (run more --steps to see it compiled)`);
  } else {
    console.log(`time per step (forward, backward, Adam): eager ${eager.msPerStep.toFixed(2)} ms, compiled ${compiled.msPerStep.toFixed(2)} ms (${(eager.msPerStep / compiled.msPerStep).toFixed(1)}x)`);
  }
  console.log(`device: ${device}${device === 'webgpu' ? ` (${torch.webgpu.context().adapterInfo.description || torch.webgpu.context().adapterInfo.device})` : ''}`);
}

if (isMain(import.meta.url)) {
  cli().then(
    // exit now: a background compile still on the GPU queue would keep the process waiting for it
    () => process.exit(process.exitCode ?? 0),
    (e: unknown) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(1);
    },
  );
}
