/**
 * Optimizers against PyTorch's update rules, re-implemented here in float64 with plain
 * loops over arrays (from torch/optim/{sgd,adam,adamw,rmsprop,adagrad}.py, single-tensor
 * path). The problem: L = sum(c * p^2 + d * p) over two parameters, so grad = 2 c p + d.
 */
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';

type Name = 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad';
type Opts = Record<string, number | boolean | number[]>;
type RefState = Record<string, Float64Array | number>;

/** PyTorch's documented defaults. */
const PYTORCH_DEFAULTS: Record<Name, Opts> = {
  SGD: { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false },
  Adam: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false },
  AdamW: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false },
  RMSprop: { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false },
  Adagrad: { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false },
};

const zeros = (n: number) => new Float64Array(n);

/** One PyTorch step for one parameter, in float64. */
function refStep(name: Name, o: Opts, p: Float64Array, grad: Float64Array, st: RefState): void {
  const n = p.length;
  const lr = o.lr as number;
  const wd = o.weightDecay as number;
  const d = Float64Array.from(grad, (g) => (o.maximize ? -g : g));
  switch (name) {
    case 'SGD': {
      if (wd !== 0) for (let i = 0; i < n; i++) d[i] += wd * p[i];
      const m = o.momentum as number;
      if (m !== 0) {
        let buf = st.buf as Float64Array | undefined;
        if (!buf) buf = st.buf = Float64Array.from(d);
        else for (let i = 0; i < n; i++) buf[i] = m * buf[i] + (1 - (o.dampening as number)) * d[i];
        for (let i = 0; i < n; i++) d[i] = o.nesterov ? d[i] + m * buf[i] : buf[i];
      }
      for (let i = 0; i < n; i++) p[i] -= lr * d[i];
      return;
    }
    case 'Adam':
    case 'AdamW': {
      const [b1, b2] = o.betas as number[];
      if (st.step === undefined) Object.assign(st, { step: 0, m: zeros(n), v: zeros(n), vmax: zeros(n) });
      const t = (st.step = (st.step as number) + 1);
      if (name === 'AdamW') for (let i = 0; i < n; i++) p[i] *= 1 - lr * wd;
      else if (wd !== 0) for (let i = 0; i < n; i++) d[i] += wd * p[i];
      const m = st.m as Float64Array;
      const v = st.v as Float64Array;
      const vmax = st.vmax as Float64Array;
      const bc1 = 1 - b1 ** t;
      const bc2 = 1 - b2 ** t;
      for (let i = 0; i < n; i++) {
        m[i] += (1 - b1) * (d[i] - m[i]); // exp_avg.lerp_(grad, 1 - beta1)
        v[i] = b2 * v[i] + (1 - b2) * d[i] * d[i];
        let second = v[i];
        if (o.amsgrad) second = vmax[i] = Math.max(vmax[i], v[i]);
        const denom = Math.sqrt(second) / Math.sqrt(bc2) + (o.eps as number);
        p[i] -= (lr / bc1) * (m[i] / denom);
      }
      return;
    }
    case 'RMSprop': {
      const a = o.alpha as number;
      const mom = o.momentum as number;
      if (st.sq === undefined) Object.assign(st, { sq: zeros(n), ga: zeros(n), buf: zeros(n) });
      if (wd !== 0) for (let i = 0; i < n; i++) d[i] += wd * p[i];
      const sq = st.sq as Float64Array;
      const ga = st.ga as Float64Array;
      const buf = st.buf as Float64Array;
      for (let i = 0; i < n; i++) {
        sq[i] = a * sq[i] + (1 - a) * d[i] * d[i];
        let avg: number;
        if (o.centered) {
          ga[i] += (1 - a) * (d[i] - ga[i]);
          avg = Math.sqrt(sq[i] - ga[i] * ga[i]) + (o.eps as number);
        } else avg = Math.sqrt(sq[i]) + (o.eps as number);
        if (mom > 0) {
          buf[i] = mom * buf[i] + d[i] / avg;
          p[i] -= lr * buf[i];
        } else p[i] -= (lr * d[i]) / avg;
      }
      return;
    }
    case 'Adagrad': {
      if (st.sum === undefined) Object.assign(st, { step: 0, sum: new Float64Array(n).fill(o.initialAccumulatorValue as number) });
      const t = (st.step = (st.step as number) + 1);
      if (wd !== 0) for (let i = 0; i < n; i++) d[i] += wd * p[i];
      const clr = lr / (1 + (t - 1) * (o.lrDecay as number));
      const sum = st.sum as Float64Array;
      for (let i = 0; i < n; i++) {
        sum[i] += d[i] * d[i];
        p[i] -= (clr * d[i]) / (Math.sqrt(sum[i]) + (o.eps as number));
      }
      return;
    }
  }
}

// The problem: two parameters with fixed coefficients.
const INIT = [
  { shape: [2, 3], p: [0.8, -1.2, 0.3, 1.5, -0.4, 0.05], c: [0.5, 1, 2, 0.25, 1.5, 3], d: [0.1, -0.3, 0.2, 0.5, -0.1, 0.05] },
  { shape: [3], p: [-0.6, 0.9, 2], c: [1, 0.3, 0.7], d: [-0.2, 0.4, 0.1] },
];
const f32 = (a: number[]) => Float64Array.from(Float32Array.from(a));

function makeParams() {
  return INIT.map((x) => torch.tensor(x.p, { shape: x.shape, requiresGrad: true }));
}
/** backward of L over the given parameter indices (the others keep grad null). */
function lossBackward(params: torch.Tensor[], which = [0, 1]) {
  let loss: torch.Tensor | null = null;
  for (const i of which) {
    const p = params[i];
    const c = torch.tensor(INIT[i].c, { shape: INIT[i].shape });
    const d = torch.tensor(INIT[i].d, { shape: INIT[i].shape });
    const li = p.mul(p).mul(c).add(p.mul(d)).sum();
    loss = loss ? loss.add(li) : li;
  }
  loss!.backward();
}
function refGrad(i: number, p: Float64Array): Float64Array {
  const c = f32(INIT[i].c);
  const d = f32(INIT[i].d);
  return Float64Array.from(p, (v, k) => 2 * c[k] * v + d[k]);
}
function make(name: Name, params: torch.Tensor[], opts: Opts) {
  const Cls = torch.optim[name] as unknown as new (p: torch.Tensor[], o: Opts) => torch.optim.Optimizer<object>;
  return new Cls(params, opts);
}

/** got within 1e-5 relative of want (with a floor at 1e-5 * 0.1 for values near 0). */
function expectRel(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5) {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    expect(err, `${what}[${i}]: ${got[i]} vs reference ${want[i]}`).toBeLessThanOrEqual(rtol * Math.max(Math.abs(want[i]), 0.1));
  }
}
const host = (t: torch.Tensor) => Float64Array.from(t.toArraySync() as Float32Array);

const CONFIGS: [Name, Opts][] = [
  ['SGD', { lr: 0.1 }],
  ['SGD', { lr: 0.1, momentum: 0.9 }],
  ['SGD', { lr: 0.1, momentum: 0.9, dampening: 0.5 }],
  ['SGD', { lr: 0.1, momentum: 0.9, nesterov: true }],
  ['SGD', { lr: 0.1, momentum: 0.5, weightDecay: 0.1 }],
  ['SGD', { lr: 0.05, momentum: 0.8, maximize: true }],
  ['Adam', { lr: 0.1 }],
  ['Adam', { lr: 0.1, betas: [0.8, 0.9], weightDecay: 0.1 }],
  ['Adam', { lr: 0.1, betas: [0.9, 0.5], amsgrad: true }],
  ['Adam', { lr: 0.1, amsgrad: true, weightDecay: 0.05, maximize: true }],
  ['AdamW', { lr: 0.1 }],
  ['AdamW', { lr: 0.1, weightDecay: 0.5, betas: [0.9, 0.5], amsgrad: true }],
  ['RMSprop', { lr: 0.01 }],
  ['RMSprop', { lr: 0.01, centered: true }],
  ['RMSprop', { lr: 0.01, momentum: 0.9 }],
  ['RMSprop', { lr: 0.01, alpha: 0.9, centered: true, momentum: 0.5, weightDecay: 0.1 }],
  ['Adagrad', { lr: 0.1 }],
  ['Adagrad', { lr: 0.1, lrDecay: 0.5 }],
  ['Adagrad', { lr: 0.1, weightDecay: 0.1, initialAccumulatorValue: 0.1, eps: 1e-6 }],
];

describe('optimizers match PyTorch update rules (float64 reference)', () => {
  it.each(CONFIGS)('%s %j: 3 steps', (name, opts) => {
    const params = makeParams();
    const opt = make(name, params, opts);
    const full = { ...PYTORCH_DEFAULTS[name], ...opts };
    const ref = INIT.map((x) => f32(x.p));
    const st: RefState[] = [{}, {}];
    for (let step = 0; step < 3; step++) {
      opt.zeroGrad();
      lossBackward(params);
      opt.step();
      ref.forEach((p, i) => refStep(name, full, p, refGrad(i, p), st[i]));
      params.forEach((p, i) => expectRel(host(p), ref[i], `${name} step ${step + 1} param ${i}`));
    }
    // the steps were big enough that a wrong rule could not hide below the tolerance
    const moved = Math.max(...ref[0].map((v, k) => Math.abs(v - Math.fround(INIT[0].p[k]))));
    expect(moved).toBeGreaterThan(1e-2);
  });

  it('amsgrad changes the result in the amsgrad configs (so they test something)', () => {
    const run = (amsgrad: boolean) => {
      const params = makeParams();
      const opt = make('Adam', params, { lr: 0.1, betas: [0.9, 0.5], amsgrad });
      for (let s = 0; s < 3; s++) {
        opt.zeroGrad();
        lossBackward(params);
        opt.step();
      }
      return host(params[0]);
    };
    const a = run(true);
    const b = run(false);
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-4);
  });
});

describe('a parameter whose grad is null is skipped', () => {
  const SKIP_CONFIGS: [Name, Opts][] = [
    ['SGD', { lr: 0.1, momentum: 0.9 }],
    ['Adam', { lr: 0.1 }],
    ['AdamW', { lr: 0.1, weightDecay: 0.5 }],
    ['RMSprop', { lr: 0.01, momentum: 0.9, centered: true }],
    ['Adagrad', { lr: 0.1, lrDecay: 0.5 }],
  ];
  it.each(SKIP_CONFIGS)('%s %j', (name, opts) => {
    const params = makeParams();
    const opt = make(name, params, opts);
    const full = { ...PYTORCH_DEFAULTS[name], ...opts };
    const ref = INIT.map((x) => f32(x.p));
    const st: RefState[] = [{}, {}];
    const schedule = [[0, 1], [0], [0, 1]]; // param 1 has no grad at step 2
    schedule.forEach((which, step) => {
      opt.zeroGrad();
      lossBackward(params, which);
      if (!which.includes(1)) expect(params[1].grad).toBeNull();
      const before1 = host(params[1]);
      opt.step();
      for (const i of which) refStep(name, full, ref[i], refGrad(i, ref[i]), st[i]);
      if (!which.includes(1)) expect(host(params[1])).toEqual(before1); // not moved, not decayed
      params.forEach((p, i) => expectRel(host(p), ref[i], `${name} step ${step + 1} param ${i}`));
    });
    const s = opt.state.get(params[1])!;
    if ('step' in s) expect(s.step).toBe(2);
  });

  it('no state is created for a parameter that never had a grad', () => {
    for (const [name, opts] of [['SGD', { lr: 0.1, momentum: 0.9 }], ['Adam', {}], ['AdamW', {}], ['RMSprop', { momentum: 0.5 }]] as [Name, Opts][]) {
      const params = makeParams();
      const opt = make(name, params, opts);
      const before = host(params[1]);
      for (let s = 0; s < 2; s++) {
        opt.zeroGrad();
        lossBackward(params, [0]);
        opt.step();
      }
      expect(opt.state.has(params[1]), name).toBe(false);
      expect(opt.state.has(params[0]), name).toBe(true);
      expect(host(params[1]), name).toEqual(before);
    }
    // Adagrad creates its accumulators at construction (as PyTorch does), but never steps them
    const params = makeParams();
    const opt = make('Adagrad', params, { initialAccumulatorValue: 0.25 });
    opt.zeroGrad();
    lossBackward(params, [0]);
    opt.step();
    const s1 = opt.state.get(params[1])!;
    expect(s1.step).toBe(0);
    expect(Array.from((s1.sum as torch.Tensor).toArraySync())).toEqual([0.25, 0.25, 0.25]);
    expect(opt.state.get(params[0])!.step).toBe(1);
  });
});

describe('optimizer stateDict', () => {
  it.each([
    ['SGD', { lr: 0.1, momentum: 0.9, nesterov: true }],
    ['Adam', { lr: 0.1, amsgrad: true }],
    ['AdamW', { lr: 0.05 }],
    ['RMSprop', { lr: 0.01, centered: true, momentum: 0.5 }],
    ['Adagrad', { lr: 0.1, lrDecay: 0.1 }],
  ] as [Name, Opts][])('%s %j: save after 2 steps, load into a fresh optimizer, continue identically', (name, opts) => {
    const a = makeParams();
    const optA = make(name, a, opts);
    for (let s = 0; s < 2; s++) {
      optA.zeroGrad();
      lossBackward(a);
      optA.step();
    }
    const sd = optA.stateDict();
    expect(Object.keys(sd.state).sort()).toEqual(['0', '1']);
    expect(sd.paramGroups[0].params).toEqual([0, 1]);
    expect(sd.paramGroups[0].lr).toBe(opts.lr);

    const b = a.map((p) => p.detach().clone().requiresGrad_());
    const optB = make(name, b, { lr: 0.5 }); // hyperparameters come from the state dict
    optB.loadStateDict(sd);
    expect((optB.paramGroups[0] as { lr?: number }).lr).toBe(opts.lr);

    for (const [params, opt] of [[a, optA], [b, optB]] as const) {
      opt.zeroGrad();
      lossBackward(params);
      opt.step();
    }
    a.forEach((p, i) => expect(host(b[i]), `param ${i}`).toEqual(host(p)));

    // and both equal the float64 reference after 3 steps
    const full = { ...PYTORCH_DEFAULTS[name], ...opts };
    const ref = INIT.map((x) => f32(x.p));
    const st: RefState[] = [{}, {}];
    for (let s = 0; s < 3; s++) ref.forEach((p, i) => refStep(name, full, p, refGrad(i, p), st[i]));
    a.forEach((p, i) => expectRel(host(p), ref[i], `param ${i}`));
  });

  it('loading a state dict for a different number of parameters fails', () => {
    const opt = make('SGD', makeParams(), { lr: 0.1 });
    const other = make('SGD', [torch.zeros(2, { requiresGrad: true })], { lr: 0.1 });
    expect(() => other.loadStateDict(opt.stateDict())).toThrow(/doesn't match the size of the optimizer's group/);
  });
});

describe('optimizer defaults and construction', () => {
  it.each(Object.keys(PYTORCH_DEFAULTS) as Name[])('%s defaults equal PyTorch', (name) => {
    const opt = make(name, makeParams(), {});
    expect(opt.defaults).toMatchObject(PYTORCH_DEFAULTS[name]);
    const { params, ...group } = opt.paramGroups[0] as Record<string, unknown>;
    expect(group).toMatchObject(PYTORCH_DEFAULTS[name]);
    expect((params as unknown[]).length).toBe(2);
  });

  it('parameter groups override the options per group', () => {
    const [p0, p1] = makeParams();
    const opt = new torch.optim.SGD([{ params: [p0] }, { params: [p1], lr: 0.5 }], { lr: 0.1, momentum: 0.9 });
    expect(opt.paramGroups[0].lr).toBe(0.1);
    expect(opt.paramGroups[1].lr).toBe(0.5);
    expect(opt.paramGroups[1].momentum).toBe(0.9);
  });

  it('bad hyperparameters are refused', () => {
    expect(() => new torch.optim.SGD(makeParams(), { lr: -1 })).toThrow(/invalid learning rate: -1/);
    expect(() => new torch.optim.SGD(makeParams(), { lr: 0.1, nesterov: true })).toThrow(/nesterov momentum requires a momentum and zero dampening/);
    expect(() => new torch.optim.Adam(makeParams(), { betas: [1, 0.9] })).toThrow(/invalid beta parameters/);
    expect(() => new torch.optim.Adam([])).toThrow(/empty parameter list/);
  });

  it('zeroGrad on the optimizer: setToNone by default, zeros with setToNone: false', () => {
    const params = makeParams();
    const opt = make('SGD', params, { lr: 0.1 });
    lossBackward(params);
    const g = params[0].grad!;
    opt.zeroGrad({ setToNone: false });
    expect(params[0].grad).toBe(g);
    expect(Array.from(g.toArraySync()).every((v) => v === 0)).toBe(true);
    opt.zeroGrad();
    expect(params[0].grad).toBeNull();
    expect(params[1].grad).toBeNull();
  });
});
