/**
 * A small character-level GPT (after Karpathy's nanoGPT) trained on data/sonnets.txt: token and
 * position embeddings, pre-LayerNorm blocks of multi-head causal self-attention (the causal mask
 * is a registered buffer) and a GELU MLP, AdamW with gradient clipping (clipGradNorm_) and a
 * cosine learning-rate schedule. The whole training step (loss, backward, clipping, AdamW) is one
 * torch.compile'd graph, on WebGPU when it is available (`--device webgpu`) and the cpu otherwise;
 * then text is sampled with torch.multinomial. `--steps N` sets the training steps (default 300).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/index.ts';
import { breathe, isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

const nn = torch.nn;
const F = torch.nn.functional;
const TEXT = resolve(dirname(fileURLToPath(import.meta.url)), '../data/sonnets.txt');

export interface GPTConfig {
  vocabSize: number;
  blockSize: number;
  nEmbd: number;
  nHead: number;
  nLayer: number;
}

class CausalSelfAttention extends nn.Module<[torch.Tensor], torch.Tensor> {
  c_attn: torch.nn.Linear;
  c_proj: torch.nn.Linear;
  declare bias: torch.Tensor;
  constructor(readonly cfg: GPTConfig) {
    super();
    // key, query, value projections for all heads, in one matmul
    this.c_attn = new nn.Linear(cfg.nEmbd, 3 * cfg.nEmbd);
    this.c_proj = new nn.Linear(cfg.nEmbd, cfg.nEmbd);
    // the causal mask: a buffer (moves with to(), in stateDict, not trained)
    this.registerBuffer('bias', torch.tril(torch.ones(cfg.blockSize, cfg.blockSize)).view(1, 1, cfg.blockSize, cfg.blockSize));
  }
  override forward(x: torch.Tensor): torch.Tensor {
    const [B, T, C] = x.shape;
    const nh = this.cfg.nHead;
    let [q, k, v] = this.c_attn(x).split(this.cfg.nEmbd, 2);
    k = k.view(B, T, nh, C / nh).transpose(1, 2); // (B, nh, T, hs)
    q = q.view(B, T, nh, C / nh).transpose(1, 2);
    v = v.view(B, T, nh, C / nh).transpose(1, 2);
    let att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(C / nh));
    const mask = this.bias.index(null, null, torch.slice(null, T), torch.slice(null, T));
    att = att.maskedFill(mask.eq(0), -Infinity);
    att = F.softmax(att, { dim: -1 });
    const y = att.matmul(v).transpose(1, 2).contiguous().view(B, T, C); // re-assemble all heads side by side
    return this.c_proj(y);
  }
}

class MLP extends nn.Module<[torch.Tensor], torch.Tensor> {
  c_fc: torch.nn.Linear;
  gelu = new nn.GELU();
  c_proj: torch.nn.Linear;
  constructor(cfg: GPTConfig) {
    super();
    this.c_fc = new nn.Linear(cfg.nEmbd, 4 * cfg.nEmbd);
    this.c_proj = new nn.Linear(4 * cfg.nEmbd, cfg.nEmbd);
  }
  override forward(x: torch.Tensor): torch.Tensor {
    return this.c_proj(this.gelu(this.c_fc(x)));
  }
}

class Block extends nn.Module<[torch.Tensor], torch.Tensor> {
  ln_1: torch.nn.LayerNorm;
  attn: CausalSelfAttention;
  ln_2: torch.nn.LayerNorm;
  mlp: MLP;
  constructor(cfg: GPTConfig) {
    super();
    this.ln_1 = new nn.LayerNorm(cfg.nEmbd);
    this.attn = new CausalSelfAttention(cfg);
    this.ln_2 = new nn.LayerNorm(cfg.nEmbd);
    this.mlp = new MLP(cfg);
  }
  override forward(x: torch.Tensor): torch.Tensor {
    x = x.add(this.attn(this.ln_1(x)));
    return x.add(this.mlp(this.ln_2(x)));
  }
}

export class GPT extends nn.Module<[torch.Tensor], torch.Tensor> {
  transformer: torch.nn.ModuleDict;
  lm_head: torch.nn.Linear;
  constructor(readonly cfg: GPTConfig) {
    super();
    this.transformer = new nn.ModuleDict({
      wte: new nn.Embedding(cfg.vocabSize, cfg.nEmbd),
      wpe: new nn.Embedding(cfg.blockSize, cfg.nEmbd),
      h: new nn.ModuleList(Array.from({ length: cfg.nLayer }, () => new Block(cfg))),
      ln_f: new nn.LayerNorm(cfg.nEmbd),
    });
    this.lm_head = new nn.Linear(cfg.nEmbd, cfg.vocabSize, { bias: false });
    // GPT-2's init: N(0, 0.02) weights, zero biases
    this.apply((m) => {
      if (m instanceof nn.Linear) {
        nn.init.normal_(m.weight, 0, 0.02);
        if (m.bias) nn.init.zeros_(m.bias);
      } else if (m instanceof nn.Embedding) nn.init.normal_(m.weight, 0, 0.02);
    });
  }
  override forward(idx: torch.Tensor): torch.Tensor {
    const [, T] = idx.shape;
    const pos = torch.arange(T, { dtype: 'int32', device: idx.device });
    const tr = this.transformer;
    let x = tr.get('wte')!(idx).add(tr.get('wpe')!(pos));
    for (const block of tr.get('h') as torch.nn.ModuleList) x = block(x);
    return this.lm_head(tr.get('ln_f')!(x));
  }
}

/** Samples `n` characters after `idx` [1, t], each from softmax(logits / temperature). */
async function generate(model: GPT, idx: torch.Tensor, n: number, temperature = 0.8): Promise<torch.Tensor> {
  model.eval();
  for (let i = 0; i < n; i++) {
    const T = idx.shape[1];
    const cond = T <= model.cfg.blockSize ? idx : idx.narrow(1, T - model.cfg.blockSize, model.cfg.blockSize);
    const logits = torch.noGrad(() => model(cond)).select(1, -1).div(temperature); // [1, V]
    const next = torch.multinomial(logits.softmax(-1), 1); // [1, 1]
    idx = torch.cat([idx, next], 1);
  }
  model.train();
  return idx;
}

export interface GPTResult {
  losses: number[];
  sample: string;
  /** graphs compiled for the training step (1: every step reused it) */
  graphs: number;
}

export async function train(opts: ExampleOptions & { sampleLength?: number } = {}): Promise<GPTResult> {
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  const steps = opts.steps ?? 300;
  await ready(device);
  torch.manualSeed(1337);

  const text = readFileSync(TEXT, 'utf8');
  const chars = [...new Set(text)].sort();
  const stoi = new Map(chars.map((c, i) => [c, i]));
  const encode = (s: string) => Int32Array.from(s, (c) => stoi.get(c)!);
  const decode = (ids: ArrayLike<number>) => Array.from(ids, (i) => chars[i]).join('');
  const data = torch.tensor(encode(text), { dtype: 'int32' });
  log(`${text.length} characters, ${chars.length} distinct`);

  const cfg: GPTConfig = { vocabSize: chars.length, blockSize: 32, nEmbd: 48, nHead: 4, nLayer: 2 };
  const batchSize = 16;
  const model = new GPT(cfg).to(device);
  log(`${model.parameters().reduce((s, p) => s + p.numel(), 0)} parameters`);
  const optimizer = new torch.optim.AdamW(model.parameters(), { lr: 3e-3, weightDecay: 0.1, betas: [0.9, 0.95] });
  const scheduler = new torch.optim.lrScheduler.CosineAnnealingLR(optimizer, { TMax: steps, etaMin: 3e-4 });

  const getBatch = () => {
    const ix = Array.from(torch.randint(0, data.shape[0] - cfg.blockSize - 1, [batchSize]).toArraySync());
    const x = torch.stack(ix.map((i) => data.narrow(0, i, cfg.blockSize)));
    const y = torch.stack(ix.map((i) => data.narrow(0, i + 1, cfg.blockSize)));
    return [x.to(device), y.to(device)];
  };

  // one compiled graph: forward, loss, backward, gradient clipping and the AdamW update
  const trainStep = torch.compile((x: torch.Tensor, y: torch.Tensor) => {
    const logits = model(x);
    const loss = F.crossEntropy(logits.view(-1, cfg.vocabSize), y.view(-1));
    optimizer.zeroGrad();
    loss.backward();
    torch.nn.utils.clipGradNorm_(model.parameters(), 1.0);
    optimizer.step();
    return loss;
  });

  const losses: number[] = [];
  for (let t = 0; t < steps; t++) {
    const [x, y] = getBatch();
    const loss = await trainStep(x, y).item();
    scheduler.step(); // a new lr is a new scalar of the same graph: no recompile
    losses.push(loss);
    await breathe();
    if (t % 50 === 0 || t === steps - 1) log(`step ${t}: loss ${loss.toFixed(4)}, lr ${optimizer.paramGroups[0].lr.toExponential(2)}`);
  }
  const start = torch.tensor(encode('\n'), { dtype: 'int32', shape: [1, 1], device });
  const out = await generate(model, start, opts.sampleLength ?? 300);
  const sample = decode(await out.toArray()).slice(1);
  log(`--- sample ---\n${sample}`);
  return { losses, sample, graphs: trainStep.cacheInfo().graphs };
}

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  return (await train(opts)).losses;
}

if (isMain(import.meta.url)) runMain(main);
