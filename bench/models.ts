// The two models issue 12 measures, written as a PyTorch user writes them (a
// faithful copy of a character GPT in the style of Karpathy's nanoGPT and a
// small digits CNN), shared by `npm run bench` and test/compile-models.test.ts.

import * as torch from '../src/index.ts';

type Tensor = torch.Tensor;
// any optimizer: its options type does not matter to a step
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Opt = torch.optim.Optimizer<any>;
const nn = torch.nn;
const F = torch.nn.functional;

export interface GptConfig {
  vocab: number;
  context: number;
  width: number;
  heads: number;
  layers: number;
  batch: number;
}

/** The example's model (examples/13-char-gpt.ts sizes) and the larger one issue 12 names. */
export const GPT_SMALL: GptConfig = { vocab: 65, context: 32, width: 64, heads: 4, layers: 2, batch: 8 };
export const GPT_LARGE: GptConfig = { vocab: 65, context: 64, width: 128, heads: 4, layers: 4, batch: 16 };

export class CausalSelfAttention extends nn.Module<[Tensor], Tensor> {
  qkv: torch.nn.Linear;
  proj: torch.nn.Linear;
  declare mask: Tensor;
  constructor(readonly cfg: GptConfig) {
    super();
    this.qkv = new nn.Linear(cfg.width, 3 * cfg.width);
    this.proj = new nn.Linear(cfg.width, cfg.width);
    this.registerBuffer('mask', torch.tril(torch.ones(cfg.context, cfg.context)));
  }
  override forward(x: Tensor): Tensor {
    const [B, T, C] = x.shape;
    const nh = this.cfg.heads;
    const [q, k, v] = this.qkv(x).split(C, 2).map((t) => t.view(B, T, nh, C / nh).transpose(1, 2));
    let att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(C / nh));
    att = att.maskedFill(this.mask.index(torch.slice(0, T), torch.slice(0, T)).eq(0), -Infinity).softmax(-1);
    const y = att.matmul(v).transpose(1, 2).contiguous().view(B, T, C);
    return this.proj(y);
  }
}

export class Block extends nn.Module<[Tensor], Tensor> {
  ln1: torch.nn.LayerNorm;
  attn: CausalSelfAttention;
  ln2: torch.nn.LayerNorm;
  fc: torch.nn.Linear;
  fc2: torch.nn.Linear;
  constructor(cfg: GptConfig) {
    super();
    this.ln1 = new nn.LayerNorm(cfg.width);
    this.attn = new CausalSelfAttention(cfg);
    this.ln2 = new nn.LayerNorm(cfg.width);
    this.fc = new nn.Linear(cfg.width, 4 * cfg.width);
    this.fc2 = new nn.Linear(4 * cfg.width, cfg.width);
  }
  override forward(x: Tensor): Tensor {
    x = x.add(this.attn(this.ln1(x)));
    return x.add(this.fc2(F.gelu(this.fc(this.ln2(x)))));
  }
}

export class GPT extends nn.Module<[Tensor], Tensor> {
  wte: torch.nn.Embedding;
  wpe: torch.nn.Embedding;
  blocks: torch.nn.ModuleList;
  lnF: torch.nn.LayerNorm;
  head: torch.nn.Linear;
  constructor(readonly cfg: GptConfig) {
    super();
    this.wte = new nn.Embedding(cfg.vocab, cfg.width);
    this.wpe = new nn.Embedding(cfg.context, cfg.width);
    this.blocks = new nn.ModuleList(Array.from({ length: cfg.layers }, () => new Block(cfg)));
    this.lnF = new nn.LayerNorm(cfg.width);
    this.head = new nn.Linear(cfg.width, cfg.vocab, { bias: false });
  }
  override forward(idx: Tensor): Tensor {
    const [, T] = idx.shape;
    let x = this.wte(idx).add(this.wpe(torch.arange(T, { device: idx.device, dtype: 'int32' })));
    for (const b of this.blocks) x = (b as Block)(x);
    return this.head(this.lnF(x));
  }
}

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

/** One training step as the example writes it: cross entropy over B*T, AdamW, clipping left out (a host-side norm read). */
export function gptStep(model: GPT, opt: Opt, idx: Tensor, targets: Tensor): Tensor {
  const logits = model(idx);
  const loss = F.crossEntropy(logits.view(-1, model.cfg.vocab), targets.view(-1));
  opt.zeroGrad();
  loss.backward();
  opt.step();
  return loss;
}

export function makeGpt(cfg: GptConfig, device: torch.Device, seed = 0): { model: GPT; opt: Opt } {
  torch.manualSeed(seed);
  const model = new GPT(cfg).to(device) as GPT;
  const opt = new torch.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.1 });
  return { model, opt };
}

// ------------------------------------------------------------------ digits CNN
/** 8x8 grey digits (../shared/data/digits.csv.gz), 10 classes. */
export const CNN = { batch: 64, side: 8, classes: 10 } as const;

export class DigitsCNN extends nn.Module<[Tensor], Tensor> {
  conv1: torch.nn.Conv2d;
  bn1: torch.nn.BatchNorm2d;
  conv2: torch.nn.Conv2d;
  fc: torch.nn.Linear;
  constructor() {
    super();
    this.conv1 = new nn.Conv2d(1, 16, 3, { padding: 1 });
    this.bn1 = new nn.BatchNorm2d(16);
    this.conv2 = new nn.Conv2d(16, 32, 3, { padding: 1 });
    this.fc = new nn.Linear(32 * 2 * 2, CNN.classes);
  }
  override forward(x: Tensor): Tensor {
    x = F.maxPool2d(F.relu(this.bn1(this.conv1(x))), 2); // [B, 16, 4, 4]
    x = F.maxPool2d(F.relu(this.conv2(x)), 2); // [B, 32, 2, 2]
    return this.fc(x.flatten(1));
  }
}

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
  const model = new DigitsCNN().to(device) as DigitsCNN;
  const opt = new torch.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  return { model, opt };
}
