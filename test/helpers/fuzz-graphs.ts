/**
 * Random programs of registry ops for the differential fuzz test of torch.compile:
 * elementwise unary and binary ops (NumPy broadcasting, tensor and scalar operands),
 * reductions over random dims, softmax-like composites, matmuls (plain, transposed,
 * batched), reshapes, permutes and expands, and the ops beyond the seed (sin, cos, erf,
 * gelu, silu, pow with a tensor exponent, var, slices, select, cat, gather, indexing with
 * an int32 tensor), on random shapes. A program is data: it
 * prints itself, and runs the same way eagerly and inside torch.compile.
 */
import { expect } from 'vitest';
import * as torch from '../../src/index.ts';
import { deviceError, interpretOutputs, interpreterBinding, relDiff, resetWaitEstimator, rng } from './compile-util.ts';
import { CpuPlan } from '../../src/compile/cpu-plan.ts';
import { optimize } from '../../src/compile/optimize.ts';
import { takeChecks } from '../../src/compile/checks.ts';
import { Tensor } from '../../src/eager/tensor.ts';
import type { Storage } from '../../src/runtime/backend.ts';

/** float32, relative to the largest element of each tensor: fused kernels round differently */
export const VALUE_TOL = 1e-4;
export const GRAD_TOL = 1e-4;

type Unary = 'neg' | 'tanh' | 'sigmoid' | 'relu' | 'abs' | 'exp∘tanh' | 'log(|x|+1)' | 'sqrt(|x|+0.5)' | 'pow2' | 'pow3∘tanh' | 'clamp' | 'sin' | 'cos' | 'erf' | 'gelu' | 'geluTanh' | 'silu';
type Binary = 'add' | 'sub' | 'mul' | 'div' | 'maximum';

export type Step =
  | { k: 'input'; i: number }
  | { k: 'unary'; f: Unary; x: number }
  | { k: 'scalar'; f: 'add' | 'sub' | 'mul' | 'div' | 'rsub'; x: number; s: number }
  | { k: 'binary'; f: Binary; a: number; b: number }
  | { k: 'reduce'; f: 'sum' | 'mean' | 'amax'; x: number; dims: number[]; keepdim: boolean }
  | { k: 'softmax' | 'logSoftmax' | 'logsumexp'; x: number; dim: number }
  | { k: 'matmul'; a: number; b: number; ta: boolean }
  | { k: 'reshape'; x: number; shape: number[] }
  | { k: 'permute'; x: number; dims: number[] }
  | { k: 'expand'; x: number; unsqueeze: number | null; shape: number[] }
  | { k: 'where'; x: number; a: number; s: number }
  /** (|a| + 0.5) ^ tanh(b) */
  | { k: 'powt'; a: number; b: number }
  | { k: 'var'; x: number; dim: number; keepdim: boolean }
  | { k: 'slice'; x: number; dim: number; start: number; len: number; step: number }
  | { k: 'select'; x: number; dim: number; i: number }
  | { k: 'cat'; a: number; b: number; dim: number }
  | { k: 'gather'; x: number; dim: number; index: number[]; ishape: number[] }
  /** x.index(X): an embedding lookup of rows of x */
  | { k: 'lookup'; x: number; index: number[]; ishape: number[] };

export interface Program {
  inputs: number[][];
  steps: Step[];
  shapes: number[][];
  outputs: number[];
}

const numel = (s: number[]) => s.reduce((p, d) => p * d, 1);

function broadcast(a: number[], b: number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

function factors(n: number): number[] {
  const f: number[] = [];
  for (let p = 2; n > 1; p++) while (n % p === 0) (f.push(p), (n /= p));
  return f;
}

const MAX_NUMEL = 600;
const MAX_MAG = 1e4;

/** A random program drawn from r. */
export function generate(r: () => number): Program {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const shuffle = <T>(xs: T[]): T[] => {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  };
  const dim = () => (r() < 0.15 ? 1 : int(2, 7));
  const randShape = (rank: number) => Array.from({ length: rank }, dim);

  const p: Program = { inputs: [], steps: [], shapes: [], outputs: [] };
  /** a rough bound on the magnitude of each value, to keep everything finite */
  const mags: number[] = [];
  const push = (s: Step, shape: number[], mag: number) => {
    p.steps.push(s);
    p.shapes.push(shape);
    mags.push(mag);
    return p.steps.length - 1;
  };
  const input = (shape: number[]) => {
    p.inputs.push(shape);
    return push({ k: 'input', i: p.inputs.length - 1 }, shape, 4);
  };
  /** operands lean toward the latest values, so programs grow deep rather than wide */
  const operand = () => (r() < 0.55 ? p.steps.length - 1 : int(0, p.steps.length - 1));

  input(randShape(int(1, 3)));
  if (r() < 0.5) input(randShape(int(1, 3)));

  const nSteps = int(3, 8);
  let guard = 0;
  while (p.steps.filter((s) => s.k !== 'input').length < nSteps && guard++ < 500) {
    const x = operand();
    const xs = p.shapes[x];
    const xm = mags[x];
    const kind = pick(['unary', 'unary', 'scalar', 'binary', 'binary', 'reduce', 'softmax', 'matmul', 'matmul', 'reshape', 'permute', 'expand', 'where', 'new', 'new', 'index', 'index'] as const);
    switch (kind) {
      case 'unary': {
        const f = pick(['neg', 'tanh', 'sigmoid', 'relu', 'abs', 'exp∘tanh', 'log(|x|+1)', 'sqrt(|x|+0.5)', 'pow2', 'pow3∘tanh', 'clamp'] as const);
        const mag = { neg: xm, tanh: 1, sigmoid: 1, relu: xm, abs: xm, 'exp∘tanh': 3, 'log(|x|+1)': Math.log(xm + 1) + 1, 'sqrt(|x|+0.5)': Math.sqrt(xm + 0.5), pow2: xm * xm, 'pow3∘tanh': 1, clamp: 0.7 }[f];
        if (mag > MAX_MAG) continue;
        push({ k: 'unary', f, x }, xs, mag);
        break;
      }
      case 'new': {
        const f = pick(['sin', 'cos', 'erf', 'gelu', 'geluTanh', 'silu', 'powt', 'var'] as const);
        if (f === 'powt') {
          const others = p.shapes.map((_, i) => i).filter((i) => broadcast(xs, p.shapes[i]) && numel(broadcast(xs, p.shapes[i])!) <= MAX_NUMEL);
          const b = pick(others);
          push({ k: 'powt', a: x, b }, broadcast(xs, p.shapes[b])!, xm + 0.5);
          break;
        }
        if (f === 'var') {
          if (!xs.length) continue;
          const d = int(0, xs.length - 1);
          if (xs[d] < 2) continue; // one element: NaN, as in PyTorch
          const keepdim = r() < 0.4;
          push({ k: 'var', x, dim: d, keepdim }, keepdim ? xs.map((n, i) => (i === d ? 1 : n)) : xs.filter((_, i) => i !== d), xm * xm * 2);
          break;
        }
        const mag = f === 'gelu' || f === 'geluTanh' || f === 'silu' ? xm : 1;
        if (mag > MAX_MAG) continue;
        push({ k: 'unary', f, x }, xs, mag);
        break;
      }
      case 'scalar': {
        const f = pick(['add', 'sub', 'mul', 'div', 'rsub'] as const);
        let s = Math.round((r() * 4 - 2) * 100) / 100;
        if (Math.abs(s) < 0.5) s = s < 0 ? -0.5 : 0.5;
        push({ k: 'scalar', f, x, s }, xs, f === 'div' ? xm * 2 : f === 'mul' ? xm * 2 : xm + 2);
        break;
      }
      case 'binary': {
        const f = pick(['add', 'sub', 'mul', 'div', 'maximum'] as const);
        // the other operand: an existing value that broadcasts with x, or a new input that does
        const others = p.shapes.map((s, i) => i).filter((i) => i !== x && broadcast(xs, p.shapes[i]) && numel(broadcast(xs, p.shapes[i])!) <= MAX_NUMEL);
        let b: number;
        if (others.length && r() < 0.4) b = pick(others);
        else if (r() < 0.1) b = x;
        else {
          let bs = xs.map((d) => (r() < 0.35 ? 1 : d));
          if (bs.length > 1 && r() < 0.3) bs = bs.slice(int(1, bs.length - 1));
          if (bs.length < 3 && r() < 0.15 && numel(xs) * 3 <= MAX_NUMEL) bs = [3, ...xs];
          b = input(bs);
        }
        const [a1, b1] = r() < 0.3 ? [b, x] : [x, b];
        const shape = broadcast(p.shapes[a1], p.shapes[b1])!;
        const ma = mags[a1];
        const mb = mags[b1];
        const mag = f === 'mul' ? ma * mb : f === 'div' ? ma * 2 : ma + mb;
        if (mag > MAX_MAG) continue;
        push({ k: 'binary', f, a: a1, b: b1 }, shape, mag);
        break;
      }
      case 'reduce': {
        if (!xs.length) continue;
        const f = pick(['sum', 'sum', 'mean', 'amax'] as const);
        const dims = shuffle(xs.map((_, i) => i)).slice(0, int(1, xs.length)).sort();
        const keepdim = r() < 0.4;
        const shape = keepdim ? xs.map((d, i) => (dims.includes(i) ? 1 : d)) : xs.filter((_, i) => !dims.includes(i));
        const mag = f === 'sum' ? xm * numel(dims.map((d) => xs[d])) : xm;
        if (mag > MAX_MAG) continue;
        push({ k: 'reduce', f, x, dims, keepdim }, shape, mag);
        break;
      }
      case 'softmax': {
        if (!xs.length) continue;
        const k = pick(['softmax', 'logSoftmax', 'logsumexp'] as const);
        const d = int(0, xs.length - 1);
        const shape = k === 'logsumexp' ? xs.filter((_, i) => i !== d) : xs;
        push({ k, x, dim: d }, shape, k === 'softmax' ? 1 : xm * 2 + Math.log(xs[d]) + 1);
        break;
      }
      case 'matmul': {
        if (!xs.length) continue;
        let a = x;
        let ta = false;
        let as = xs;
        if (xs.length === 2 && r() < 0.3) {
          ta = true;
          as = [xs[1], xs[0]];
        }
        const K = as[as.length - 1];
        const N = int(1, 7);
        let bs = [K, N];
        if (as.length === 3 && r() < 0.4) bs = [r() < 0.3 ? 1 : as[0], K, N]; // batched: broadcast multiply + sum
        if (as.length === 1 && r() < 0.3) bs = [K]; // dot product
        const shape = bs.length === 1 ? [] : as.length === 1 ? [N] : as.length === 3 ? [Math.max(as[0], bs.length === 3 ? bs[0] : 1), as[1], N] : [as[0], N];
        if (numel(shape) > MAX_NUMEL || numel(as) * N > 4 * MAX_NUMEL) continue;
        const mag = xm * 4 * K;
        if (mag > MAX_MAG) continue;
        const b = input(bs);
        a = x;
        push({ k: 'matmul', a, b, ta }, shape, mag);
        break;
      }
      case 'reshape': {
        const n = numel(xs);
        if (n <= 1) continue;
        const fs = shuffle(factors(n));
        const rank = int(1, Math.min(3, fs.length));
        const shape = Array.from({ length: rank }, () => 1);
        fs.forEach((f, i) => (shape[i < rank ? i : int(0, rank - 1)] *= f));
        if (r() < 0.2 && shape.length < 3) shape.splice(int(0, shape.length), 0, 1);
        push({ k: 'reshape', x, shape }, shape, xm);
        break;
      }
      case 'permute': {
        if (xs.length < 2) continue;
        let dims = shuffle(xs.map((_, i) => i));
        if (dims.every((d, i) => d === i)) dims = dims.reverse();
        push({ k: 'permute', x, dims }, dims.map((d) => xs[d]), xm);
        break;
      }
      case 'expand': {
        let base = xs;
        let unsqueeze: number | null = null;
        if (!xs.includes(1) || r() < 0.3) {
          if (xs.length >= 3) continue;
          unsqueeze = int(0, xs.length);
          base = [...xs.slice(0, unsqueeze), 1, ...xs.slice(unsqueeze)];
        }
        const shape = base.map((d) => (d === 1 ? int(2, 4) : d));
        if (numel(shape) > MAX_NUMEL) continue;
        push({ k: 'expand', x, unsqueeze, shape }, shape, xm);
        break;
      }
      case 'index': {
        if (!xs.length) continue;
        const f = pick(['slice', 'slice', 'select', 'cat', 'gather', 'lookup'] as const);
        const d = int(0, xs.length - 1);
        if (f === 'slice') {
          const step = r() < 0.3 ? int(2, 3) : 1;
          const start = int(0, xs[d] - 1);
          const len = int(1, Math.ceil((xs[d] - start) / step));
          push({ k: 'slice', x, dim: d, start, len, step }, xs.map((n, i) => (i === d ? len : n)), xm);
        } else if (f === 'select') {
          push({ k: 'select', x, dim: d, i: int(-xs[d], xs[d] - 1) }, xs.filter((_, i) => i !== d), xm);
        } else if (f === 'cat') {
          const others = p.shapes.map((_, i) => i).filter((i) => p.shapes[i].length === xs.length && p.shapes[i].every((n, k) => k === d || n === xs[k]));
          let b = pick(others);
          if (r() < 0.5) b = input(xs.map((n, k) => (k === d ? int(1, 4) : n)));
          const shape = xs.map((n, k) => (k === d ? n + p.shapes[b][k] : n));
          if (numel(shape) > MAX_NUMEL) continue;
          push({ k: 'cat', a: x, b, dim: d }, shape, Math.max(xm, mags[b]));
        } else if (f === 'gather') {
          const ishape = xs.map((n, k) => (k === d ? int(1, 6) : int(1, n)));
          push({ k: 'gather', x, dim: d, index: Array.from({ length: numel(ishape) }, () => int(0, xs[d] - 1)), ishape }, ishape, xm);
        } else {
          const ishape = r() < 0.5 ? [int(1, 5)] : [int(1, 3), int(1, 3)];
          const shape = [...ishape, ...xs.slice(1)];
          if (numel(shape) > MAX_NUMEL) continue;
          push({ k: 'lookup', x, index: Array.from({ length: numel(ishape) }, () => int(-xs[0], xs[0] - 1)), ishape }, shape, xm);
        }
        break;
      }
      case 'where': {
        // where(x > 0, x, s * x): a leaky relu through a mask
        let s = Math.round((r() * 2 - 1) * 100) / 100;
        if (s === 0) s = 0.1;
        push({ k: 'where', x, a: x, s }, xs, xm);
        break;
      }
    }
  }
  // outputs: the last value, sometimes another computed one
  const last = p.steps.length - 1;
  p.outputs.push(last);
  const computed = p.steps.map((s, i) => (s.k !== 'input' && i !== last ? i : -1)).filter((i) => i >= 0);
  if (computed.length && r() < 0.4) p.outputs.push(pick(computed));
  return p;
}

/** Runs a program on tensors (eagerly, or on traced tensors inside torch.compile). */
export function execute(p: Program, inputs: torch.Tensor[]): torch.Tensor[] {
  const v: torch.Tensor[] = [];
  for (const s of p.steps) v.push(stepValue(s, v, inputs));
  return p.outputs.map((i) => v[i]);
}

function stepValue(s: Step, v: torch.Tensor[], inputs: torch.Tensor[]): torch.Tensor {
  switch (s.k) {
    case 'input':
      return inputs[s.i];
    case 'unary': {
      const x = v[s.x];
      switch (s.f) {
        case 'neg': return x.neg();
        case 'tanh': return x.tanh();
        case 'sigmoid': return x.sigmoid();
        case 'relu': return x.relu();
        case 'abs': return x.abs();
        case 'exp∘tanh': return x.tanh().exp();
        case 'log(|x|+1)': return x.abs().add(1).log();
        case 'sqrt(|x|+0.5)': return x.abs().add(0.5).sqrt();
        case 'pow2': return x.pow(2);
        case 'pow3∘tanh': return x.tanh().pow(3);
        case 'clamp': return x.clamp(-0.5, 0.7);
        case 'sin': return x.sin();
        case 'cos': return x.cos();
        case 'erf': return x.erf();
        case 'gelu': return x.gelu();
        case 'geluTanh': return x.gelu({ approximate: 'tanh' });
        case 'silu': return x.silu();
      }
      break;
    }
    case 'scalar': {
      const x = v[s.x];
      switch (s.f) {
        case 'add': return x.add(s.s);
        case 'sub': return x.sub(s.s);
        case 'mul': return x.mul(s.s);
        case 'div': return x.div(s.s);
        case 'rsub': return x.neg().add(s.s);
      }
      break;
    }
    case 'binary': {
      const a = v[s.a];
      const b = v[s.b];
      switch (s.f) {
        case 'add': return a.add(b);
        case 'sub': return a.sub(b);
        case 'mul': return a.mul(b);
        case 'div': return a.div(b.abs().add(0.5));
        case 'maximum': return torch.where(a.gt(b), a, b);
      }
      break;
    }
    case 'reduce': {
      const x = v[s.x];
      const dims = s.dims.length === 1 && s.keepdim ? s.dims[0] : s.dims;
      if (s.f === 'sum') return x.sum(dims, s.keepdim);
      if (s.f === 'mean') return x.mean(dims, s.keepdim);
      return x.amax(s.dims, s.keepdim);
    }
    case 'softmax':
      return v[s.x].softmax(s.dim);
    case 'logSoftmax':
      return v[s.x].logSoftmax(s.dim);
    case 'logsumexp':
      return v[s.x].logsumexp(s.dim);
    case 'matmul': {
      const a = s.ta ? v[s.a].t() : v[s.a];
      return a.matmul(v[s.b]);
    }
    case 'reshape':
      return v[s.x].reshape(s.shape);
    case 'permute':
      return v[s.x].permute(s.dims);
    case 'expand': {
      const x = s.unsqueeze === null ? v[s.x] : v[s.x].unsqueeze(s.unsqueeze);
      return x.expand(s.shape);
    }
    case 'where': {
      const x = v[s.x];
      return torch.where(x.gt(0), v[s.a], x.mul(s.s));
    }
    case 'powt':
      return v[s.a].abs().add(0.5).pow(v[s.b].tanh());
    case 'var':
      return v[s.x].var(s.dim, { keepdim: s.keepdim });
    case 'slice': {
      const x = v[s.x];
      if (s.step === 1) return x.narrow(s.dim, s.start, s.len);
      const items = x.shape.map((_, d) => (d === s.dim ? torch.slice(s.start, s.start + (s.len - 1) * s.step + 1, s.step) : null));
      return x.index(...items);
    }
    case 'select':
      return v[s.x].select(s.dim, s.i);
    case 'cat':
      return torch.cat([v[s.a], v[s.b]], s.dim);
    case 'gather':
      return v[s.x].gather(s.dim, torch.tensor(Int32Array.from(s.index), { shape: s.ishape, device: v[s.x].device }));
    case 'lookup':
      return v[s.x].index(torch.tensor(Int32Array.from(s.index), { shape: s.ishape, device: v[s.x].device }));
  }
  throw new Error(`fuzz: unknown step ${JSON.stringify(s)}`);
}

/** The program as text, one value per line, for failure messages. */
export function describe(p: Program): string {
  const sh = (i: number) => `[${p.shapes[i].join(',')}]`;
  const lines = p.steps.map((s, i) => {
    const body = (() => {
      switch (s.k) {
        case 'input': return `input ${s.i}`;
        case 'unary': return `${s.f} %${s.x}`;
        case 'scalar': return `${s.f} %${s.x} ${s.s}`;
        case 'binary': return `${s.f} %${s.a} %${s.b}`;
        case 'reduce': return `${s.f} %${s.x} dims=[${s.dims}] keepdim=${s.keepdim}`;
        case 'softmax': case 'logSoftmax': case 'logsumexp': return `${s.k} %${s.x} dim=${s.dim}`;
        case 'matmul': return `matmul ${s.ta ? `t(%${s.a})` : `%${s.a}`} %${s.b}`;
        case 'reshape': return `reshape %${s.x} [${s.shape}]`;
        case 'permute': return `permute %${s.x} [${s.dims}]`;
        case 'expand': return `expand ${s.unsqueeze === null ? '' : `unsqueeze(${s.unsqueeze}) `}%${s.x} [${s.shape}]`;
        case 'where': return `where(%${s.x} > 0, %${s.a}, %${s.x} * ${s.s})`;
        case 'powt': return `(|%${s.a}| + 0.5).pow(tanh(%${s.b}))`;
        case 'var': return `var %${s.x} dim=${s.dim} keepdim=${s.keepdim}`;
        case 'slice': return `slice %${s.x} dim=${s.dim} start=${s.start} len=${s.len} step=${s.step}`;
        case 'select': return `select %${s.x} dim=${s.dim} i=${s.i}`;
        case 'cat': return `cat [%${s.a}, %${s.b}] dim=${s.dim}`;
        case 'gather': return `gather %${s.x} dim=${s.dim} index=[${s.index}] shape [${s.ishape}]`;
        case 'lookup': return `%${s.x}.index(int32 [${s.index}] shape [${s.ishape}])`;
      }
    })();
    return `  %${i}${sh(i)} = ${body}`;
  });
  return [...lines, `  outputs: ${p.outputs.map((o) => `%${o}`).join(', ')}`].join('\n');
}

// ------------------------------------------------------------------ running a case
function normal(r: () => number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  return out;
}

export interface Case {
  seed: number;
  index: number;
  program: Program;
  inputs: Float32Array[];
  /** per output: weights of the returned values and of the loss */
  valueW: Float32Array[];
  lossW: Float32Array[];
  /** also compile it under noGrad (forward-only graph) */
  forwardOnly: boolean;
}

export function makeCase(seed: number, index: number): Case {
  const r = rng(seed * 7919 + index);
  const program = generate(r);
  const inputs = program.inputs.map((s) => normal(r, numel(s)));
  const outShapes = program.outputs.map((o) => program.shapes[o]);
  const valueW = outShapes.map((s) => Float32Array.from({ length: numel(s) }, () => 0.5 + r()));
  const lossW = outShapes.map((s) => normal(r, numel(s)));
  return { seed, index, program, inputs, valueW, lossW, forwardOnly: index % 4 === 0 };
}

/** The function under test: weighted outputs (detached) and the weighted-sum loss. */
function fnOf(c: Case, dev: torch.Device) {
  const vw = c.valueW.map((w, i) => torch.tensor(w, { shape: c.program.shapes[c.program.outputs[i]], device: dev }));
  const lw = c.lossW.map((w, i) => torch.tensor(w, { shape: c.program.shapes[c.program.outputs[i]], device: dev }));
  return (...xs: torch.Tensor[]): torch.Tensor[] => {
    const outs = execute(c.program, xs);
    let loss = outs[0].mul(lw[0]).sum();
    for (let i = 1; i < outs.length; i++) loss = loss.add(outs[i].mul(lw[i]).sum());
    // multiplying by a weight keeps returned values out of the view-output path (covered by compile.test.ts)
    return [loss, ...outs.map((o, i) => o.mul(vw[i]).detach())];
  };
}

const leavesOf = (c: Case, requiresGrad: boolean, dev: torch.Device) =>
  c.inputs.map((d, i) => torch.tensor(d.slice(), { shape: c.program.inputs[i], device: dev, requiresGrad }));

async function expectAllClose(got: torch.Tensor[], want: torch.Tensor[], tol: number, what: string, ctx: string) {
  expect(got.length, `${what}: count\n${ctx}`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    expect(got[i].shape, `${what} ${i}: shape\n${ctx}`).toEqual(want[i].shape);
    const d = relDiff(await got[i].toArray(), await want[i].toArray());
    expect(d.rel, `${what} ${i}: ${d.detail}\n${ctx}`).toBeLessThanOrEqual(tol);
  }
}

/** Compiled vs eager on `dev` (every op of eager mode is what the reference interpreter runs for its node). */
export async function runCase(c: Case, dev: torch.Device = 'webgpu'): Promise<void> {
  if (dev === 'webgpu') resetWaitEstimator(); // BUG 7 workaround
  const ctx = `fuzz seed ${c.seed}, graph ${c.index} (WGTORCH_FUZZ_SEED=${c.seed} npx vitest run test/compile-fuzz.test.ts -t '${dev} graph ${c.index} '):\n${describe(c.program)}`;
  const pending = dev === 'webgpu' ? await deviceError() : null; // an earlier test's error belongs to it, not to this graph
  void pending;
  const fn = fnOf(c, dev);
  try {
    // eager reference
    const le = leavesOf(c, true, dev);
    const [lossE, ...valsE] = fn(...le);
    lossE.backward();
    // compiled forward + backward
    const lc = leavesOf(c, true, dev);
    const fast = torch.compile(fn);
    const [lossC, ...valsC] = fast(...lc);
    expect(fast.graphs().length, `compiled, not eager\n${ctx}`).toBe(1);
    await expectAllClose(valsC, valsE, VALUE_TOL, 'output', ctx);
    // the loss is a sum of many terms: compare it at the scale of its terms
    const scale = (await Promise.all(valsE.map(async (v) => (await v.abs().sum().item()) + 1e-6))).reduce((a, b) => a + b, 0);
    const lossDiff = Math.abs((await lossC.item()) - (await lossE.item()));
    expect(lossDiff / scale, `loss: ${await lossC.item()} vs ${await lossE.item()}\n${ctx}`).toBeLessThanOrEqual(2 * VALUE_TOL);
    lossC.backward();
    for (let i = 0; i < le.length; i++) {
      if (le[i].grad === null) {
        expect(lc[i].grad, `input ${i} has no gradient in eager mode\n${ctx}`).toBeNull();
        continue;
      }
      expect(lc[i].grad, `gradient of input ${i}\n${ctx}`).not.toBeNull();
      await expectAllClose([lc[i].grad!], [le[i].grad!], GRAD_TOL, `gradient of input ${i}`, ctx);
    }
    if (dev === 'cpu') await interpreterCheck(c, fn, ctx);
    if (c.forwardOnly) {
      const fwd = torch.compile(fn);
      const [, ...valsF] = torch.noGrad(() => fwd(...leavesOf(c, false, dev)));
      expect(fwd.graphs()[0].backwardIR, ctx).toBeNull();
      await expectAllClose(valsF, valsE, VALUE_TOL, 'forward-only output', ctx);
    }
  } catch (e) {
    const err = e as Error;
    if (!err.message.includes('fuzz seed')) err.message = `${err.message}\n${ctx}`;
    throw err;
  } finally {
    const err = dev === 'webgpu' ? await deviceError() : null;
    if (err) throw new Error(`device error: ${err.message.split('\n').slice(0, 6).join('\n')}\n${ctx}`);
  }
}


/**
 * The cpu target against the reference interpreter, plan to graph: the traced forward +
 * backward graph of the case (seeded with ones) run by the interpreter, and its optimised,
 * fused CpuPlan; every output (values, saved activations, gradients) must agree.
 */
async function interpreterCheck(c: Case, fn: (...xs: torch.Tensor[]) => torch.Tensor[], ctx: string): Promise<void> {
  const t = torch.trace((...xs: torch.Tensor[]) => fn(...xs)[0], ...leavesOf(c, true, 'cpu'), { backward: true });
  const seeds = t.graph.nodes.filter((n) => n.op === 'input' && n.phase === 'backward').map((n) => torch.ones(n.shape));
  const bind = interpreterBinding(t.program, seeds);
  // as torch.compile builds it: value checks out of the graph (the interpreter runs no checks), then the passes
  const unchecked = takeChecks(t.graph).graph;
  const want = (await interpretOutputs(unchecked, bind)).filter((_, i) => unchecked.outputs[i].role !== 'check');
  const plan = new CpuPlan(optimize(unchecked));
  const out = plan.run(
    (id) => bind(plan.graph.node(id)) as Storage,
    (id) => bind(plan.graph.node(id)) as number,
  );
  // the passes keep the outputs in order
  const got = await Promise.all(
    plan.graph.outputs.filter((o) => o.role !== 'check').map(async (o) => {
      const n = plan.graph.node(o.id);
      const s = out.get(o.id);
      if (!s) return Float32Array.of(bind(n) as number); // a folded constant
      return Float32Array.from((await new Tensor(s, [...n.shape], n.dtype).toArray()) as ArrayLike<number>);
    }),
  );
  expect(got.length, ctx).toBe(want.length);
  want.forEach((w, i) => {
    const d = relDiff(got[i], w);
    expect(d.rel, `cpu plan vs interpreter, output ${i} (${unchecked.outputs[i].role}): ${d.detail}\n${ctx}`).toBeLessThanOrEqual(GRAD_TOL);
  });
}
