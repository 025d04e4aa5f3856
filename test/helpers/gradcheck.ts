/**
 * Finite-difference gradient checking for float32 tensors.
 *
 * The checked scalar is L = sum(w * f(inputs)) with fixed random weights w, so every
 * output element contributes with a different weight (a wrong gradient cannot hide
 * behind a plain sum). The analytic gradient comes from L.backward(); the numeric one
 * from central differences of L (steps h and h/2, Richardson-extrapolated so the O(h^2)
 * truncation error cancels), accumulated in float64 on the host from the float32 outputs. The step actually taken is the float32-rounded one: (x+h) - (x-h) in float32.
 */
import * as torch from '../../src/index.ts';

/** A small seeded generator (mulberry32), independent of the library's own RNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const numelOf = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);

export type Gen =
  /** uniform in [-1.5, 1.5], at least 0.1 away from 0 (no kinks of relu/abs/sign) */
  | 'signed'
  /** uniform in [0.5, 2] (log, sqrt, fractional powers, divisors) */
  | 'positive'
  /** distinct values, pairwise at least 0.1 apart, shuffled (max/min without ties) */
  | 'distinct'
  /** uniform in [-2, 2], at least `margin` (default 0.1) away from each of the given points (clamp bounds) */
  | { awayFrom: number[]; margin?: number };

export function values(r: () => number, n: number, gen: Gen): Float32Array {
  const out = new Float32Array(n);
  if (gen === 'distinct') {
    const v = Array.from({ length: n }, (_, i) => (i - (n - 1) / 2) * 0.17 + 0.03 * r());
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [v[i], v[j]] = [v[j], v[i]];
    }
    out.set(v);
    return out;
  }
  for (let i = 0; i < n; i++) {
    let x: number;
    if (gen === 'positive') x = 0.5 + 1.5 * r();
    else if (gen === 'signed') {
      const m = 0.1 + 1.4 * r();
      x = r() < 0.5 ? -m : m;
    } else {
      do x = -2 + 4 * r();
      while (gen.awayFrom.some((p) => Math.abs(x - p) < (gen.margin ?? 0.1)));
    }
    out[i] = x;
  }
  return out;
}

export interface CheckResult {
  /** per differentiable input: analytic and numeric gradients, flat */
  analytic: Float64Array[];
  numeric: Float64Array[];
  /** the output's autograd graph, as backward node names */
  nodeNames: Set<string>;
}

/** Names of every backward node reachable from t.gradFn. */
export function graphNames(t: torch.Tensor): Set<string> {
  const names = new Set<string>();
  const seen = new Set<unknown>();
  const stack: unknown[] = t.gradFn ? [t.gradFn] : [];
  while (stack.length) {
    const n = stack.pop() as { name: string; next: ({ node?: unknown } | null)[] };
    if (seen.has(n)) continue;
    seen.add(n);
    names.add(n.name);
    for (const e of n.next) if (e?.node) stack.push(e.node);
  }
  return names;
}

const hostOf = (t: torch.Tensor) => Float64Array.from(t.toArraySync() as ArrayLike<number>);

/**
 * Runs the check. `inputs` are leaves; those with requiresGrad are differentiated
 * (the others, e.g. masks or int targets, are passed through unchanged).
 */
export function gradcheck(
  fn: (...xs: torch.Tensor[]) => torch.Tensor,
  inputs: torch.Tensor[],
  opts: { h?: number; seed?: number; richardson?: boolean } = {},
): CheckResult {
  const h = opts.h ?? 1e-2;
  const richardson = opts.richardson ?? true;
  const out = fn(...inputs);
  if (out.dtype !== 'float32') throw new Error(`gradcheck: output dtype ${out.dtype}`);
  const r = rng(opts.seed ?? 1234);
  const w = Float64Array.from({ length: out.numel() }, () => 0.5 + r()); // in [0.5, 1.5)
  const wT = torch.tensor(Float32Array.from(w), { shape: out.shape });
  const wf = Float64Array.from(wT.toArraySync() as Float32Array); // the exact float32 weights
  const diff = inputs.filter((x) => x.requiresGrad);
  const nodeNames = graphNames(out);
  const analytic = torch.autograd.grad(out.mul(wT).sum(), diff, { allowUnused: true }).map((g, i) =>
    g ? hostOf(g) : new Float64Array(diff[i].numel()),
  );

  const L = (xs: torch.Tensor[]) => {
    const y = hostOf(torch.noGrad(() => fn(...xs)));
    let s = 0;
    for (let i = 0; i < y.length; i++) s += wf[i] * y[i];
    return s;
  };
  const base = inputs.map((x) => x.toArraySync());
  const numeric = diff.map((x) => {
    const k = inputs.indexOf(x);
    const g = new Float64Array(x.numel());
    for (let i = 0; i < g.length; i++) {
      const at = (v: Float32Array) => inputs.map((y, j) => (j === k ? torch.tensor(v, { shape: x.shape }) : y.detach()));
      const central = (step: number) => {
        const plus = Float32Array.from(base[k] as Float32Array);
        const minus = Float32Array.from(base[k] as Float32Array);
        plus[i] += step;
        minus[i] -= step;
        return (L(at(plus)) - L(at(minus))) / (plus[i] - minus[i]);
      };
      // Richardson extrapolation of two central differences cancels the h^2 error term.
      g[i] = richardson ? (4 * central(h / 2) - central(h)) / 3 : central(h);
    }
    return g;
  });
  return { analytic, numeric, nodeNames };
}

/**
 * How far the analytic gradient is from the numeric one, in units of the tolerance
 * |a - n| <= atol + rtol |n|: <= 1 passes. `scale` multiplies the analytic gradient
 * (scale 1.1 is a deliberately wrong gradient that must fail).
 */
export function worstRatio(res: CheckResult, atol: number, rtol: number, scale = 1): number {
  let worst = 0;
  res.analytic.forEach((a, j) => {
    const n = res.numeric[j];
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(scale * a[i] - n[i]) / (atol + rtol * Math.abs(n[i])));
  });
  return worst;
}

export function maxAbsErr(res: CheckResult): { abs: number; rel: number; maxGrad: number } {
  let abs = 0;
  let rel = 0;
  let maxGrad = 0;
  res.analytic.forEach((a, j) => {
    const n = res.numeric[j];
    for (let i = 0; i < a.length; i++) {
      const e = Math.abs(a[i] - n[i]);
      abs = Math.max(abs, e);
      rel = Math.max(rel, e / Math.max(Math.abs(n[i]), 1e-3));
      maxGrad = Math.max(maxGrad, Math.abs(n[i]));
    }
  });
  return { abs, rel, maxGrad };
}

/** A float32 leaf that requires grad, with values from `gen`. */
export function leafFactory(seed: number) {
  const r = rng(seed);
  return (shape: number[], gen: Gen = 'signed', requiresGrad = true) =>
    torch.tensor(values(r, numelOf(shape), gen), { shape, requiresGrad });
}
