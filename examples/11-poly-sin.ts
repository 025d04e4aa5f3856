/**
 * The current "Learning PyTorch with Examples": a third-order polynomial fitted to
 * y = sin(x) on [-pi, pi], once per section of the tutorial, each printing `t loss` every
 * 100 steps and the fitted polynomial at the end, as the tutorial does:
 *   1. NumPy (float64 loops here: there is no NumPy), gradients by hand;
 *   2. Tensors, gradients by hand;  3. Autograd;  4. a custom autograd Function
 *   (LegendrePolynomial3);  5. nn (Sequential(Linear(3, 1), Flatten(0, 1)), manual update);
 *   6. optim (RMSprop);  7. a custom nn.Module (Polynomial3, with its string() method);
 *   8. control flow and weight sharing (DynamicNet with 4th and 5th order terms).
 * `--steps N` runs every section N steps (the tutorial: 2000, and 30000 for DynamicNet).
 */
import * as torch from '../src/index.ts';
import { breathe, isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

const F64 = (t: torch.Tensor) => Float64Array.from(t.toArraySync());

/** Section 1: NumPy. Random numbers from wgtorch's seeded generator (np.random.randn). */
function numpySection(steps: number, log: (l: string) => void): number {
  const n = 2000;
  const x = Float64Array.from({ length: n }, (_, i) => -Math.PI + (2 * Math.PI * i) / (n - 1));
  const y = x.map(Math.sin);
  let [a, b, c, d] = F64(torch.randn(4));
  const learningRate = 1e-6;
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y: y = a + b x + c x^2 + d x^3
    const yPred = x.map((v) => a + b * v + c * v ** 2 + d * v ** 3);
    // Compute and print loss
    loss = yPred.reduce((s, p, i) => s + (p - y[i]) ** 2, 0);
    if (t % 100 === 99) log(`${t} ${loss}`);
    // Backprop to compute gradients of a, b, c, d with respect to loss
    let [ga, gb, gc, gd] = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      const g = 2.0 * (yPred[i] - y[i]);
      ga += g;
      gb += g * x[i];
      gc += g * x[i] ** 2;
      gd += g * x[i] ** 3;
    }
    // Update weights
    a -= learningRate * ga;
    b -= learningRate * gb;
    c -= learningRate * gc;
    d -= learningRate * gd;
  }
  log(`Result: y = ${a} + ${b} x + ${c} x^2 + ${d} x^3`);
  return loss;
}

/** Section 2: Tensors, the gradients still written by hand. */
async function tensorSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  // Randomly initialize weights
  let [a, b, c, d] = [0, 1, 2, 3].map(() => torch.randn([], { device }));
  const learningRate = 1e-6;
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const yPred = a.add(b.mul(x)).add(c.mul(x.pow(2))).add(d.mul(x.pow(3)));
    loss = await yPred.sub(y).pow(2).sum().item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    const gradYPred = yPred.sub(y).mul(2.0);
    const gradA = gradYPred.sum();
    const gradB = gradYPred.mul(x).sum();
    const gradC = gradYPred.mul(x.pow(2)).sum();
    const gradD = gradYPred.mul(x.pow(3)).sum();
    a = a.sub(gradA.mul(learningRate));
    b = b.sub(gradB.mul(learningRate));
    c = c.sub(gradC.mul(learningRate));
    d = d.sub(gradD.mul(learningRate));
  }
  log(`Result: y = ${await a.item()} + ${await b.item()} x + ${await c.item()} x^2 + ${await d.item()} x^3`);
  return loss;
}

/** Section 3: Autograd computes the gradients of the four scalar tensors. */
async function autogradSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  const [a, b, c, d] = [0, 1, 2, 3].map(() => torch.randn([], { device, requiresGrad: true }));
  const learningRate = 1e-6;
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const yPred = a.add(b.mul(x)).add(c.mul(x.pow(2))).add(d.mul(x.pow(3)));
    const l = yPred.sub(y).pow(2).sum();
    loss = await l.item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    l.backward();
    torch.noGrad(() => {
      for (const p of [a, b, c, d]) {
        p.sub_(p.grad!.mul(learningRate));
        p.grad = null;
      }
    });
  }
  log(`Result: y = ${await a.item()} + ${await b.item()} x + ${await c.item()} x^2 + ${await d.item()} x^3`);
  return loss;
}

/**
 * Section 4: a custom autograd Function. P3(x) = 1/2 (5x^3 - 3x) is the Legendre polynomial of
 * degree three; its backward is P3'(x) = 3/2 (5x^2 - 1).
 */
export class LegendrePolynomial3 extends torch.autograd.Function {
  static forward(ctx: torch.autograd.Context, input: torch.Tensor) {
    ctx.saveForBackward(input);
    return input.pow(3).mul(5).sub(input.mul(3)).mul(0.5);
  }
  static backward(ctx: torch.autograd.Context, gradOutput: torch.Tensor) {
    const [input] = ctx.savedTensors;
    return gradOutput.mul(1.5).mul(input.pow(2).mul(5).sub(1));
  }
}

async function customFunctionSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  // For this example the weights start not too far from the right result, so that it converges
  const [a, b, c, d] = [0.0, -1.0, 0.0, 0.3].map((v) => torch.full([], v, { device, requiresGrad: true }));
  const learningRate = 5e-6;
  const P3 = LegendrePolynomial3.apply;
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const yPred = a.add(b.mul(P3(c.add(d.mul(x)))));
    const l = yPred.sub(y).pow(2).sum();
    loss = await l.item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    l.backward();
    torch.noGrad(() => {
      for (const p of [a, b, c, d]) {
        p.sub_(p.grad!.mul(learningRate));
        p.grad = null;
      }
    });
  }
  log(`Result: y = ${await a.item()} + ${await b.item()} * P3(${await c.item()} + ${await d.item()} x)`);
  return loss;
}

/** The input of the nn sections: each row is (x, x^2, x^3), made with a tensor exponent. */
function features(device: torch.Device) {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  const p = torch.tensor([1, 2, 3], { device });
  const xx = x.unsqueeze(-1).pow(p); // [2000, 3]
  return { x, y, xx };
}

async function printLinear(model: torch.nn.Sequential, log: (l: string) => void): Promise<void> {
  // The first layer of the model is like a list item
  const linear = model.at(0) as torch.nn.Linear;
  const w = await linear.weight.toArray();
  log(`Result: y = ${await linear.bias!.item()} + ${w[0]} x + ${w[1]} x^2 + ${w[2]} x^3`);
}

/** Section 5: nn. The Flatten(0, 1) turns the [2000, 1] output into [2000], like y. */
async function nnSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const { y, xx } = features(device);
  const model = new torch.nn.Sequential(new torch.nn.Linear(3, 1), new torch.nn.Flatten(0, 1)).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const learningRate = 1e-6;
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const l = lossFn(model(xx), y);
    loss = await l.item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    model.zeroGrad();
    l.backward();
    torch.noGrad(() => {
      for (const param of model.parameters()) param.sub_(param.grad!.mul(learningRate));
    });
  }
  await printLinear(model, log);
  return loss;
}

/** Section 6: optim. RMSprop with lr 1e-3. */
async function optimSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const { y, xx } = features(device);
  const model = new torch.nn.Sequential(new torch.nn.Linear(3, 1), new torch.nn.Flatten(0, 1)).to(device);
  const lossFn = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.RMSprop(model.parameters(), { lr: 1e-3 });
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const l = lossFn(model(xx), y);
    loss = await l.item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    optimizer.zeroGrad();
    l.backward();
    optimizer.step();
  }
  await printLinear(model, log);
  return loss;
}

/** Section 7: a custom Module with four scalar parameters and a string() method. */
export class Polynomial3 extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  a: torch.nn.Parameter;
  b: torch.nn.Parameter;
  c: torch.nn.Parameter;
  d: torch.nn.Parameter;
  constructor() {
    super();
    [this.a, this.b, this.c, this.d] = [0, 1, 2, 3].map(() => new torch.nn.Parameter(torch.randn([])));
  }
  override forward(x: torch.Tensor): torch.Tensor {
    return this.a.add(this.b.mul(x)).add(this.c.mul(x.pow(2))).add(this.d.mul(x.pow(3)));
  }
  /** Like any class in Python, you can define custom methods on a Module too. */
  async string(): Promise<string> {
    return `y = ${await this.a.item()} + ${await this.b.item()} x + ${await this.c.item()} x^2 + ${await this.d.item()} x^3`;
  }
}

async function customModuleSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  const model = new Polynomial3().to(device);
  const criterion = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 1e-6 });
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const l = criterion(model(x), y);
    loss = await l.item();
    if (t % 100 === 99) log(`${t} ${loss}`);
    optimizer.zeroGrad();
    l.backward();
    optimizer.step();
  }
  log(`Result: ${await model.string()}`);
  return loss;
}

/** Python's random.randint(a, b), both ends included, from wgtorch's seeded generator. */
function randint(a: number, b: number): number {
  return torch.randint(a, b + 1, [], { device: 'cpu' }).itemSync();
}

/**
 * Section 8: on every forward pass DynamicNet picks 4 or 5 or 6 and adds that many
 * higher-order terms minus three, all with the one parameter e (weight sharing).
 */
export class DynamicNet extends torch.nn.Module<[torch.Tensor], torch.Tensor> {
  a: torch.nn.Parameter;
  b: torch.nn.Parameter;
  c: torch.nn.Parameter;
  d: torch.nn.Parameter;
  e: torch.nn.Parameter;
  constructor() {
    super();
    [this.a, this.b, this.c, this.d, this.e] = [0, 1, 2, 3, 4].map(() => new torch.nn.Parameter(torch.randn([])));
  }
  override forward(x: torch.Tensor): torch.Tensor {
    let y = this.a.add(this.b.mul(x)).add(this.c.mul(x.pow(2))).add(this.d.mul(x.pow(3)));
    for (let exp = 4; exp < randint(4, 6); exp++) y = y.add(this.e.mul(x.pow(exp)));
    return y;
  }
  async string(): Promise<string> {
    const [a, b, c, d, e] = await Promise.all([this.a, this.b, this.c, this.d, this.e].map((p) => p.item()));
    return `y = ${a} + ${b} x + ${c} x^2 + ${d} x^3 + ${e} x^4 ? + ${e} x^5 ?`;
  }
}

async function dynamicSection(steps: number, device: torch.Device, log: (l: string) => void): Promise<number> {
  const x = torch.linspace(-Math.PI, Math.PI, 2000, { device });
  const y = torch.sin(x);
  const model = new DynamicNet().to(device);
  // Training this strange model with vanilla SGD is hard, so we use momentum
  const criterion = new torch.nn.MSELoss({ reduction: 'sum' });
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 1e-8, momentum: 0.9 });
  let loss = 0;
  for (let t = 0; t < steps; t++) {
    const l = criterion(model(x), y);
    loss = await l.item();
    if (t % 2000 === 1999) log(`${t} ${loss}`);
    optimizer.zeroGrad();
    l.backward();
    optimizer.step();
  }
  log(`Result: ${await model.string()}`);
  return loss;
}

/** Runs the eight sections; returns each section's last loss, in order. */
export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  const steps = opts.steps ?? 2000;
  await ready(device);
  torch.manualSeed(0);
  const sections: [string, () => number | Promise<number>][] = [
    ['NumPy', () => numpySection(steps, log)],
    ['Tensors', () => tensorSection(steps, device, log)],
    ['Autograd', () => autogradSection(steps, device, log)],
    ['Defining new autograd functions', () => customFunctionSection(steps, device, log)],
    ['nn module', () => nnSection(steps, device, log)],
    ['optim', () => optimSection(steps, device, log)],
    ['Custom nn Modules', () => customModuleSection(steps, device, log)],
    ['Control Flow + Weight Sharing', () => dynamicSection(opts.steps ?? 30000, device, log)],
  ];
  const losses: number[] = [];
  for (const [title, run] of sections) {
    log(`# ${title}`);
    losses.push(await run());
    await breathe();
  }
  return losses;
}

if (isMain(import.meta.url)) runMain(main);
