// The two models issue 12 measures, exactly as the examples write them (the
// character GPT of examples/13-char-gpt.ts and the digits CNN of
// examples/12-digits-cnn.ts), with their optimizers and training steps, on fixed
// batches: shared by `npm run bench` and test/compile-models.test.ts.

import * as torch from '../src/index.ts';
import { GPT as ExampleGPT, type GPTConfig } from '../examples/13-char-gpt.ts';
import { DigitsCNN } from '../examples/12-digits-cnn.ts';

type Tensor = torch.Tensor;
// any optimizer: its options type does not matter to a step
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Opt = torch.optim.Optimizer<any>;
const F = torch.nn.functional;

export interface GptConfig {
  vocab: number;
  context: number;
  width: number;
  heads: number;
  layers: number;
  batch: number;
}

/** The example's model (examples/13-char-gpt.ts: its sizes, vocab 65 as issue 12 gives it) and the larger one issue 12 names. */
export const GPT_SMALL: GptConfig = { vocab: 65, context: 32, width: 48, heads: 4, layers: 2, batch: 16 };
export const GPT_LARGE: GptConfig = { vocab: 65, context: 64, width: 128, heads: 4, layers: 4, batch: 16 };

/** The example's GPT (examples/13-char-gpt.ts) at a bench config's sizes. */
export type GPT = ExampleGPT;
const toExample = (c: GptConfig): GPTConfig => ({ vocabSize: c.vocab, blockSize: c.context, nEmbd: c.width, nHead: c.heads, nLayer: c.layers });

/** Token batches of a fixed pseudo-random text: idx [B, T] and its next tokens. */
export function gptBatch(cfg: GptConfig, device: torch.Device, seed = 1): { idx: Tensor; targets: Tensor } {
  const n = cfg.batch * (cfg.context + 1);
  const toks: number[] = [];
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    toks.push(s % cfg.vocab);
  }
  const seq = torch.tensor(toks, { dtype: 'int32' }).reshape(cfg.batch, cfg.context + 1);
  const idx = seq.index(null, torch.slice(0, cfg.context)).contiguous().to(device);
  const targets = seq.index(null, torch.slice(1, cfg.context + 1)).contiguous().to(device);
  return { idx, targets };
}

/** One training step as the example writes it: cross entropy over B*T, backward, clipGradNorm_(1.0), AdamW. */
export function gptStep(model: GPT, opt: Opt, idx: Tensor, targets: Tensor): Tensor {
  const logits = model(idx);
  const loss = F.crossEntropy(logits.view(-1, model.cfg.vocabSize), targets.view(-1));
  opt.zeroGrad();
  loss.backward();
  torch.nn.utils.clipGradNorm_(model.parameters(), 1.0);
  opt.step();
  return loss;
}

export function makeGpt(cfg: GptConfig, device: torch.Device, seed = 0): { model: GPT; opt: Opt } {
  torch.manualSeed(seed);
  const model = new ExampleGPT(toExample(cfg)).to(device) as GPT;
  const opt = new torch.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.1, betas: [0.9, 0.95] });
  return { model, opt };
}

// ------------------------------------------------------------------ digits CNN
/** 8x8 grey digits (../shared/data/digits.csv.gz), 10 classes. */
export const CNN = { batch: 64, side: 8, classes: 10 } as const;

export { DigitsCNN };

export function cnnBatch(device: torch.Device, seed = 2): { x: Tensor; y: Tensor } {
  torch.manualSeed(seed);
  const x = torch.rand(CNN.batch, 1, CNN.side, CNN.side, { device });
  const y = torch.randint(0, CNN.classes, [CNN.batch], { dtype: 'int32' }).to(device);
  return { x, y };
}

export function cnnStep(model: DigitsCNN, opt: Opt, x: Tensor, y: Tensor): Tensor {
  const loss = F.crossEntropy(model(x), y);
  opt.zeroGrad();
  loss.backward();
  opt.step();
  return loss;
}

export function makeCnn(device: torch.Device, seed = 0): { model: DigitsCNN; opt: Opt } {
  torch.manualSeed(seed);
  const model = new DigitsCNN().to(device);
  const opt = new torch.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  return { model, opt };
}

/**
 * The README model's whole step compiled (TwoLayerNet 64x1000 -> 100 -> 10 as a Sequential, MSE
 * with reduction sum, Adam lr 1e-4, on fixed randn data): the soak, the memory-plan A/B and the
 * 8-binding run measure this one step.
 */
export function seedCompiledStep(device: torch.Device, compileOpts: Parameters<typeof torch.compile>[1] = {}): torch.Compiled<() => Tensor> {
  torch.manualSeed(0);
  const x = torch.randn(64, 1000, { device });
  const y = torch.randn(64, 10, { device });
  const model = new torch.nn.Sequential(new torch.nn.Linear(1000, 100), new torch.nn.ReLU(), new torch.nn.Linear(100, 10)).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-4 });
  return torch.compile(() => {
    const loss = lossFn(model(x), y);
    opt.zeroGrad();
    loss.backward();
    opt.step();
    return loss;
  }, compileOpts);
}
