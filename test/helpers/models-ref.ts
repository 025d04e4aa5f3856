/**
 * The PyTorch reference of ../shared/reference/models.json (see models.md there): the formula
 * `wave(shape, j, amp)` that makes every input and parameter, the parameter-init rule, and typed
 * access to the records. Shared by the ops parity test and the nn/model parity tests.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const MODELS_PATH = resolve(here, '../../../shared/reference/models.json');

export interface Flat {
  shape: number[];
  values: number[];
}
export interface ModelsOpRec {
  name: string;
  expr: string;
  inputs: string[];
  out: Flat & { dtype: string };
  grad_weighted: Record<string, Flat | null>;
}
export interface Stat {
  shape: number[];
  sum: number;
  abs_sum: number;
}

export const models = JSON.parse(readFileSync(MODELS_PATH, 'utf8'));
export const constants = models.meta.constants as { freq: number; phase: number } & Record<string, unknown>;
export const opsRecords = models.ops.ops as ModelsOpRec[];
export const opsTensors = models.ops.tensors as Record<string, Flat>;
export const opsIntTensors = models.ops.int_tensors as Record<string, Flat>;

const numel = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

/**
 * Tensor `j` of the formula family: element `flat` (row-major) is
 * f32(amp * sin(freq*(1+0.1*j)*(flat+1) + phase + j)), evaluated in float64 in the same
 * operation order as models.py so that every value matches bit for bit.
 */
export function wave(shape: readonly number[], j: number, amp = 1): Float32Array {
  const n = numel(shape);
  const f = constants.freq * (1 + 0.1 * j);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(amp * Math.sin(f * (i + 1) + constants.phase + j));
  return out;
}

/** models.py's test for normalisation parameters (weight ~ 1, bias ~ 0). */
export function isNormParam(name: string): boolean {
  return name.includes('norm') || name.startsWith('ln') || name.includes('.ln') || name.includes('bn');
}

/**
 * The value of parameter number `i` (in named_parameters() order) called `name`: models.md's
 * init formula. Normalisation weights are f32(1 + wave(.., 0.1)), their biases wave(.., 0.1);
 * other parameters wave(.., amp) with amp = 1/sqrt(fan_in) (fan_in = product of shape[1:], 1
 * for 1-D), times 0.1 for biases.
 */
export function paramInit(name: string, shape: readonly number[], i: number): Float32Array {
  if (isNormParam(name)) {
    const w = wave(shape, 100 + i, 0.1);
    if (name.endsWith('weight')) for (let k = 0; k < w.length; k++) w[k] = Math.fround(1 + w[k]);
    return w;
  }
  const fanIn = shape.length > 1 ? numel(shape.slice(1)) : 1;
  let amp = 1 / Math.sqrt(fanIn);
  if (name.endsWith('bias')) amp *= 0.1;
  return wave(shape, 100 + i, amp);
}

/** models.md's gradient weighting: W[flat] = 1 + 0.1*(flat % 7), as float32. */
export function weightsLike(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.fround(1 + 0.1 * (i % 7));
  return w;
}

/** A float32 statistic as models.py computes it: sum and abs sum in float64. */
export function statOfValues(a: ArrayLike<number>): { sum: number; abs_sum: number } {
  let sum = 0;
  let abs = 0;
  for (let i = 0; i < a.length; i++) {
    sum += a[i];
    abs += Math.abs(a[i]);
  }
  return { sum, abs_sum: abs };
}
