/**
 * The PyTorch reference runs of ../shared/reference/golden.json, rebuilt in wgtorch:
 * the same formula inputs, models, losses and optimizers. Shared by the eager,
 * WebGPU and compiled parity tests.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/index.ts';
import { DynamicNet } from './compile-util.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const GOLDEN_PATH = resolve(here, '../../../shared/reference/golden.json');

export interface Stat {
  shape: number[];
  sum: number;
  abs_sum: number;
}
export interface TrainRec {
  losses: number[];
  loss_after_steps?: number;
  depths?: number[];
  final_params: Record<string, Stat>;
  grad_step0: Record<string, Stat | null>;
  optimizer: Record<string, unknown> & { name: string; lr: number };
  loss: string;
  zero_grad_set_to_none: boolean;
}
export interface OpRec {
  name: string;
  inputs: string[];
  out: { shape: number[]; values: number[]; indices?: number[] };
  grad_sum: Record<string, { shape: number[]; values: number[] }>;
  weights: { shape: number[]; values: number[] };
  grad_weighted: Record<string, { shape: number[]; values: number[] }>;
}
export const golden = JSON.parse(readFileSync(GOLDEN_PATH, 'utf8'));

const f32 = Math.fround;
export function formula(shape: [number, number] | [number], fn: (...idx: number[]) => number): Float32Array {
  const out = new Float32Array(shape.reduce((p, d) => p * d, 1));
  if (shape.length === 1) for (let i = 0; i < shape[0]; i++) out[i] = f32(fn(i));
  else for (let i = 0; i < shape[0]; i++) for (let j = 0; j < shape[1]; j++) out[i * shape[1] + j] = f32(fn(i, j));
  return out;
}

const { N, D_in, H, D_out } = golden.dims as Record<string, number>;
export const dims = { N, D_in, H, D_out };
export const inputs = {
  x: formula([N, D_in], (i, j) => Math.sin(0.37 * (i * D_in + j) + 0.1)),
  y: formula([N, D_out], (i, k) => Math.cos(0.11 * (i * D_out + k))),
  w1: formula([D_in, H], (a, b) => 0.05 * Math.sin(0.013 * (a * H + b) + 0.7)),
  w2: formula([H, D_out], (b, k) => 0.05 * Math.cos(0.029 * (b * D_out + k) + 0.3)),
  b1: formula([H], (b) => 0.01 * Math.sin(b)),
  b2: formula([D_out], (k) => 0.01 * Math.cos(k)),
  wm: formula([H, H], (b, c) => 0.05 * Math.sin(0.017 * (b * H + c) + 0.2)),
  bm: formula([H], (c) => 0.01 * Math.sin(2 * c)),
};
export const shapes: Record<keyof typeof inputs, number[]> = {
  x: [N, D_in], y: [N, D_out], w1: [D_in, H], w2: [H, D_out], b1: [H], b2: [D_out], wm: [H, H], bm: [H],
};

export function input(name: keyof typeof inputs, device: torch.Device, opts: { requiresGrad?: boolean } = {}): torch.Tensor {
  return torch.tensor(inputs[name].slice(), { shape: shapes[name], device, ...opts });
}

/** Sequential(Linear, ReLU, Linear) holding w1^T, b1, w2^T, b2. */
export function makeSequential(device: torch.Device) {
  const model = new torch.nn.Sequential(new torch.nn.Linear(D_in, H), new torch.nn.ReLU(), new torch.nn.Linear(H, D_out));
  model.loadStateDict({
    '0.weight': input('w1', 'cpu').t(),
    '0.bias': input('b1', 'cpu'),
    '2.weight': input('w2', 'cpu').t(),
    '2.bias': input('b2', 'cpu'),
  });
  return model.to(device);
}

const dynNames: Record<string, string> = {
  'input_linear.weight': 'inputLinear.weight', 'input_linear.bias': 'inputLinear.bias',
  'middle_linear.weight': 'middleLinear.weight', 'middle_linear.bias': 'middleLinear.bias',
  'output_linear.weight': 'outputLinear.weight', 'output_linear.bias': 'outputLinear.bias',
};
/** golden's torch names -> our camelCase field names (Sequential's names are the same). */
export const toOurName = (n: string) => dynNames[n] ?? n;

export function makeDynamic(device: torch.Device) {
  const model = new DynamicNet(D_in, H, D_out);
  model.loadStateDict({
    'inputLinear.weight': input('w1', 'cpu').t(),
    'inputLinear.bias': input('b1', 'cpu'),
    'middleLinear.weight': input('wm', 'cpu').t(),
    'middleLinear.bias': input('bm', 'cpu'),
    'outputLinear.weight': input('w2', 'cpu').t(),
    'outputLinear.bias': input('b2', 'cpu'),
  });
  return model.to(device);
}

export function makeOptimizer(rec: TrainRec, params: torch.Tensor[]): torch.optim.Optimizer<object> {
  const o = rec.optimizer;
  switch (o.name) {
    case 'Adam': return new torch.optim.Adam(params, { lr: o.lr });
    case 'AdamW': return new torch.optim.AdamW(params, { lr: o.lr, weightDecay: o.weight_decay as number });
    case 'SGD': return new torch.optim.SGD(params, { lr: o.lr, momentum: o.momentum as number });
    case 'RMSprop': return new torch.optim.RMSprop(params, { lr: o.lr });
    case 'Adagrad': return new torch.optim.Adagrad(params, { lr: o.lr });
    default: throw new Error(`no optimizer ${o.name}`);
  }
}

export interface TrainResult {
  losses: number[];
  lossAfter: number | null;
  grad0: Record<string, torch.Tensor | null>;
  params: Record<string, torch.Tensor>;
}

/**
 * The tutorial's loop: loss recorded before zeroGrad/backward/step.
 * `wrap` lets the compiled tests swap in torch.compile(model).
 */
export async function trainRecord(
  rec: TrainRec,
  device: torch.Device,
  opts: { dynamic?: boolean; wrap?: (m: torch.nn.Module) => (...a: any[]) => torch.Tensor } = {},
): Promise<TrainResult> {
  const model: torch.nn.Module = opts.dynamic ? makeDynamic(device) : makeSequential(device);
  const run = opts.wrap ? opts.wrap(model) : model;
  const x = input('x', device);
  const y = input('y', device);
  const lossFn = new torch.nn.MSELoss({ reduction: rec.loss.includes("'sum'") ? 'sum' : 'mean' });
  const opt = makeOptimizer(rec, model.parameters());
  const losses: number[] = [];
  let grad0: Record<string, torch.Tensor | null> = {};
  for (let t = 0; t < rec.losses.length; t++) {
    const yPred = opts.dynamic ? run(x, rec.depths![t]) : run(x);
    const loss = lossFn(yPred, y);
    losses.push(await loss.item());
    opt.zeroGrad({ setToNone: rec.zero_grad_set_to_none });
    loss.backward();
    if (t === 0) grad0 = Object.fromEntries(model.namedParameters().map(([n, p]) => [n, p.grad ? p.grad.clone() : null]));
    opt.step();
  }
  const lossAfter = opts.dynamic ? null : await torch.noGrad(() => lossFn(model(x), y)).item();
  return { losses, lossAfter, grad0, params: Object.fromEntries(model.namedParameters()) };
}

export async function statOf(t: torch.Tensor): Promise<{ sum: number; abs_sum: number }> {
  const a = await t.toArray();
  let sum = 0;
  let abs = 0;
  for (const v of a) {
    sum += v;
    abs += Math.abs(v);
  }
  return { sum, abs_sum: abs };
}

/** The golden training runs trained through the model APIs: name, record, and whether it is the DynamicNet. */
export const TRAIN_RECORDS: [string, TrainRec, boolean][] = [
  ['b: Sequential + Adam, MSE sum', golden.b, false],
  ['c: Sequential + SGD momentum, MSE sum', golden.c, false],
  ['d: Sequential + SGD, MSE mean', golden.d, false],
  ['e: RMSprop', golden.e.rmsprop, false],
  ['e: Adagrad', golden.e.adagrad, false],
  ['e: AdamW', golden.e.adamw, false],
  ['f.listed: DynamicNet, fixed depth list', golden.f.listed, true],
];
