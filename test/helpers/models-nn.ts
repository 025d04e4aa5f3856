/**
 * The models of models.json (models.py) rebuilt in wgtorch with PyTorch's structure and names:
 * the tutorial's LegendrePolynomial3 and DynamicNet, the SmallCNN and the one-block TinyGPT,
 * their formula-initialised parameters, and a training loop recorded as models.py's record().
 */
import * as torch from '../../src/index.ts';
import { models, paramInit, wave } from './models-ref.ts';

const F = torch.nn.functional;
const K = models.meta.constants;

export class LegendrePolynomial3 extends torch.autograd.Function {
  static forward(ctx: torch.autograd.Context, input: torch.Tensor) {
    ctx.saveForBackward(input);
    return input.pow(3).mul(5).sub(input.mul(3)).mul(0.5);
  }
  static backward(ctx: torch.autograd.Context, g: torch.Tensor) {
    const [input] = ctx.savedTensors;
    return g.mul(1.5).mul(input.pow(2).mul(5).sub(1));
  }
}

export class DynamicNet extends torch.nn.Module<[torch.Tensor, number], torch.Tensor> {
  a: torch.nn.Parameter;
  b: torch.nn.Parameter;
  c: torch.nn.Parameter;
  d: torch.nn.Parameter;
  e: torch.nn.Parameter;
  constructor(init: number[], device: torch.Device) {
    super();
    const p = (v: number) => new torch.nn.Parameter(torch.tensor(v, { device }));
    [this.a, this.b, this.c, this.d, this.e] = init.map(p);
  }
  override forward(x: torch.Tensor, n: number) {
    let y = this.a.add(this.b.mul(x)).add(this.c.mul(x.pow(2))).add(this.d.mul(x.pow(3)));
    for (let exp = 4; exp < n; exp++) y = y.add(this.e.mul(x.pow(exp)));
    return y;
  }
}

export class SmallCNN extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  conv1 = new torch.nn.Conv2d(1, 4, 3);
  bn1 = new torch.nn.BatchNorm2d(4);
  conv2 = new torch.nn.Conv2d(4, 8, 3, { padding: 1 });
  fc = new torch.nn.Linear(8 * 2 * 2, 10);
  override forward(x: torch.Tensor) {
    let h = F.maxPool2d(F.relu(this.bn1(this.conv1(x))), 2);
    h = F.maxPool2d(F.relu(this.conv2(h)), 2);
    return this.fc(torch.flatten(h, 1));
  }
}

export const GPT = { V: 12, T: 8, C: 16, NH: 2, B: 4 };

class Block extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  ln1 = new torch.nn.LayerNorm(GPT.C);
  attn = new torch.nn.Linear(GPT.C, 3 * GPT.C);
  proj = new torch.nn.Linear(GPT.C, GPT.C);
  ln2 = new torch.nn.LayerNorm(GPT.C);
  fc = new torch.nn.Linear(GPT.C, 4 * GPT.C);
  fc2 = new torch.nn.Linear(4 * GPT.C, GPT.C);
  declare mask: torch.Tensor;
  constructor() {
    super();
    this.registerBuffer('mask', torch.tril(torch.ones(GPT.T, GPT.T)));
  }
  override forward(x: torch.Tensor) {
    const [B, T, C] = x.shape;
    const nh = GPT.NH;
    let [q, k, v] = this.attn(this.ln1(x)).split(GPT.C, 2);
    q = q.view(B, T, nh, C / nh).transpose(1, 2);
    k = k.view(B, T, nh, C / nh).transpose(1, 2);
    v = v.view(B, T, nh, C / nh).transpose(1, 2);
    let att = q.matmul(k.transpose(-2, -1)).mul(1 / Math.sqrt(C / nh));
    att = att.maskedFill(this.mask.index(torch.slice(null, T), torch.slice(null, T)).eq(0), -Infinity).softmax({ dim: -1 });
    const y = att.matmul(v).transpose(1, 2).contiguous().view(B, T, C);
    x = x.add(this.proj(y));
    return x.add(this.fc2(F.gelu(this.fc(this.ln2(x)))));
  }
}

export class TinyGPT extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  wte = new torch.nn.Embedding(GPT.V, GPT.C);
  wpe = new torch.nn.Embedding(GPT.T, GPT.C);
  block = new Block();
  ln_f = new torch.nn.LayerNorm(GPT.C);
  head = new torch.nn.Linear(GPT.C, GPT.V, { bias: false });
  override forward(idx: torch.Tensor) {
    const [, T] = idx.shape;
    const x = this.wte(idx).add(this.wpe(torch.arange(T, { dtype: 'int32', device: idx.device })));
    return this.head(this.ln_f(this.block(x)));
  }
}

/** models.md's init: parameter i (named_parameters order) from the formula. */
export function initByFormula(model: torch.nn.Module): void {
  model.namedParameters().forEach(([name, p], i) => {
    torch.noGrad(() => p.data.copy_(torch.tensor(paramInit(name, p.shape, i), { shape: p.shape })));
  });
}

export function cnnData(device: torch.Device) {
  const X = torch.tensor(wave([8, 1, 12, 12], 30), { shape: [8, 1, 12, 12], device });
  const Y = torch.tensor(Int32Array.from({ length: 8 }, (_, i) => (i * (K.cnn_label_mul as number)) % 10), { dtype: 'int32', device });
  return { X, Y };
}

export function gptData(device: torch.Device) {
  const [m5, m3, m1] = K.gpt_tok as number[];
  const { V, T, B } = GPT;
  const seq = Array.from({ length: B }, (_, b) => Array.from({ length: T + 1 }, (_, t) => (b * m5 + t * m3 + t * t * m1) % V));
  const idx = torch.tensor(Int32Array.from(seq.flatMap((s) => s.slice(0, -1))), { shape: [B, T], dtype: 'int32', device });
  const tgt = torch.tensor(Int32Array.from(seq.flatMap((s) => s.slice(1))), { shape: [B, T], dtype: 'int32', device });
  return { idx, tgt };
}
