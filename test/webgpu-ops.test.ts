/**
 * Differential tests of the 'webgpu' device against 'cpu', driven by the op registry:
 * every registry op has cases in TABLE (a test fails when a new op has none), and each
 * case runs on both devices from the same host data and compares the forward values
 * (shape, dtype, values) and the gradients of every leaf (backward of a randomly
 * weighted sum of the outputs).
 *
 * Shapes are random: drawn from WGTORCH_SEED (a fresh seed per run unless it is set;
 * every failure message starts with it, so `WGTORCH_SEED=<n> npx vitest run
 * test/webgpu-ops.test.ts` replays a failure). They include sizes that are not
 * multiples of the workgroup size (64), broadcasting, empty tensors and 0-d tensors,
 * int32 and bool data where the op takes it, the in-place methods, and shapes large
 * enough to need the 2D dispatch fold (> 65535 workgroups).
 *
 * Tolerances (float32; see compareArrays): elementwise forward 1e-5 relative; reductions,
 * matmul and gradients (which hold the reductions of broadcasting) also allow an absolute
 * error relative to the largest value of the result. WGTORCH_DIFF_REPORT=1 prints the
 * worst measured ratios to the tolerance.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { checkIndex } from '../src/eager/checks.ts';
import { apply } from '../src/eager/dispatch.ts';
import type { DType, HostArray } from '../src/ir/dtype.ts';
import { allOps, type Attrs } from '../src/ir/registry.ts';
import { getBackend, type Backend, type Device } from '../src/runtime/backend.ts';
import { webgpuAvailable } from './helpers/devices.ts';
import { compareArrays, hostData, type DataGen, type Tol } from './helpers/differential.ts';
import { rng } from './helpers/gradcheck.ts';
import { disableWaitSleep } from './helpers/webgpu-workarounds.ts';

type T = torch.Tensor;

const SEED = process.env.WGTORCH_SEED ? Number(process.env.WGTORCH_SEED) : Math.floor(Math.random() * 1e9);
const TAG = `[WGTORCH_SEED=${SEED}]`;
const report = process.env.WGTORCH_DIFF_REPORT === '1';

// ------------------------------------------------------------------ tolerances
// Measured over many seeds (WGTORCH_DIFF_REPORT=1): see the report in the lead's notes.
/** elementwise forward: a few float32 ulps (transcendentals differ by a few ulps from the cpu's double-then-round) */
const EW: Tol = { rtol: 1e-5, atol: 1e-6 };
/** reductions and matmul: the sum order differs (tree vs sequential / double) */
const RED: Tol = { rtol: 1e-5, atol: 2e-6 };
/**
 * a sum of n elements: the rounding error of a float32 sum grows like sqrt(n) ulps of the
 * terms, so a sum that cancels to near zero needs an absolute slack that grows with n
 * (at a fixed 2e-6, 'all of [7,33,6]' failed at 1.02x its tolerance for one seed)
 */
const sumTol = (n: number): Tol => ({ rtol: 1e-5, atol: 2e-6 * Math.max(1, Math.sqrt(n) / 6) });
/** gradients: elementwise chains plus the sums that undo broadcasting */
const GRAD: Tol = { rtol: 1e-5, atol: 2e-6 };

// ------------------------------------------------------------------ random shapes
const R = rng(SEED);
const DIMS = [1, 2, 3, 4, 5, 6, 7, 9, 13, 17, 33, 65, 70];
const numel = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);
const fmt = (s: readonly number[]) => `[${s.join(',')}]`;
const pick = <X>(xs: readonly X[]): X => xs[Math.floor(R() * xs.length)];

function randShape(minRank = 1, maxRank = 4, maxNumel = 3000): number[] {
  const rank = minRank + Math.floor(R() * (maxRank - minRank + 1));
  for (;;) {
    const s = Array.from({ length: rank }, () => pick(DIMS));
    if (numel(s) <= maxNumel) return s;
  }
}
/** More than one workgroup of elements, and not a multiple of the workgroup size (64). */
function oddShape(minRank = 1, maxRank = 4): number[] {
  for (;;) {
    const s = randShape(minRank, maxRank);
    if (numel(s) > 64 && numel(s) % 64 !== 0) return s;
  }
}
/** A different shape that broadcasts against s: leading dims dropped and/or dims set to 1. */
function bcastOf(s: number[]): number[] {
  for (let tries = 0; tries < 20; tries++) {
    const drop = Math.floor(R() * s.length);
    const t = s.slice(drop).map((d) => (R() < 0.5 ? 1 : d));
    if (fmt(t) !== fmt(s)) return t;
  }
  return s.slice(1);
}
function emptyShape(): number[] {
  const s = randShape(1, 3, 400);
  s[Math.floor(R() * s.length)] = 0;
  return s;
}
/** A random permutation of 0..n-1 that is not the identity (n >= 2). */
function randPerm(n: number): number[] {
  for (;;) {
    const p = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(R() * (i + 1));
      [p[i], p[j]] = [p[j], p[i]];
    }
    if (p.some((v, i) => v !== i)) return p;
  }
}

// ------------------------------------------------------------------ cases
interface In {
  shape: number[];
  dtype: DType;
  gen: DataGen;
  /** default: float32 inputs require grad */
  grad?: boolean;
}
interface Case {
  label: string;
  inputs: In[];
  fn: (xs: T[], dev: Device) => T | T[];
  tol?: Tol;
  gradTol?: Tol;
  /** registry ops that must run on webgpu in this case (default: the table key) */
  runs?: string[];
  /** the in-place method this case exercises */
  inPlace?: string;
  /** a reported bug outside this file makes the case fail: it runs as it.fails, so fixing the bug turns it red (then drop the mark) */
  knownBug?: string;
}
const f = (shape: number[], gen: DataGen = 'signed', grad?: boolean): In => ({ shape, dtype: 'float32', gen, grad });
const i32 = (shape: number[], gen: DataGen = 'int'): In => ({ shape, dtype: 'int32', gen });
const b8 = (shape: number[]): In => ({ shape, dtype: 'bool', gen: 'bool' });
const c = (label: string, inputs: In[], fn: Case['fn'], extra: Partial<Case> = {}): Case => ({ label, inputs, fn, ...extra });

/** How an elementwise op is exercised: its input domains, attribute variants, and which dtypes it takes. */
interface EwConf {
  gens?: DataGen[];
  dtypes?: DType[];
  variants?: { attrs: Attrs; gens?: DataGen[]; int?: boolean }[];
  /** also run on int32 data (with these gens) */
  int?: DataGen[];
  /** also run on bool data */
  bool?: boolean;
  /** scalar operands tried in each position (binary ops) */
  scalars?: number[];
  /** the operand positions that may be scalars (default: all) */
  scalarPos?: number[];
  /** a reported bug with NaN / inf inputs (see KNOWN_BUGS) */
  nonfiniteBug?: string;
  tol?: Tol;
}
const CMP: EwConf = { gens: ['int', 'int'], int: ['int', 'int'], bool: true, scalars: [0, 1.5] };
const EW_CONF: Record<string, EwConf> = {
  add: { int: ['int', 'int'], bool: true, scalars: [2.5, -3] },
  sub: { int: ['int', 'int'], scalars: [2.5, -3] },
  mul: { int: ['int', 'int'], bool: true, scalars: [2.5, -3] },
  div: { gens: ['signed', 'signed'], int: ['int', 'intnz'], scalars: [2.5, -3] },
  neg: { int: ['int'] },
  exp: {},
  log: { gens: ['positive'] },
  sqrt: { gens: ['positive'] },
  abs: { int: ['int'] },
  sign: { int: ['int'], gens: ['normal'] },
  tanh: { gens: [{ awayFrom: [] }] },
  sigmoid: { gens: [{ awayFrom: [] }] },
  relu: { int: ['int'] },
  pow: {
    int: ['int'],
    variants: [
      { attrs: { exponent: 2 }, int: true },
      { attrs: { exponent: 3 }, int: true },
      { attrs: { exponent: 5 } },
      { attrs: { exponent: 6 } },
      { attrs: { exponent: -1 }, gens: ['positive'] },
      { attrs: { exponent: -2 }, gens: [{ awayFrom: [0], margin: 0.5 }] },
      { attrs: { exponent: 0.5 }, gens: ['positive'] },
      { attrs: { exponent: 2.5 }, gens: ['positive'] },
      { attrs: { exponent: 1 } },
      { attrs: { exponent: 0 } },
    ],
  },
  clamp: {
    int: ['int'],
    variants: [
      { attrs: { min: 0, max: null }, gens: [{ awayFrom: [0] }], int: true },
      { attrs: { min: null, max: 0.5 }, gens: [{ awayFrom: [0.5] }] },
      { attrs: { min: -0.5, max: 0.7 }, gens: [{ awayFrom: [-0.5, 0.7] }], int: true },
    ],
  },
  copy: { int: ['int'], bool: true },
  sin: { gens: ['normal'], int: ['int'] },
  cos: { gens: ['normal'], int: ['int'] },
  erf: { gens: ['normal'], int: ['int'] },
  powt: { gens: ['positive', 'signed'], int: ['int', 'int'], scalars: [2, 0.5], scalarPos: [0, 1] },
  lt: CMP, le: CMP, gt: CMP, ge: CMP, eq: CMP, ne: CMP,
  where: { gens: ['bool', 'signed', 'signed'], dtypes: ['bool', 'float32', 'float32'], int: ['bool', 'int', 'int'], scalars: [-1.5, 2], scalarPos: [1, 2] },
};

/**
 * Reported bugs outside the files this suite may change (see the report of issue 3):
 * WGSL lets an implementation assume no NaN, and lavapipe does: `a != b` is false when a
 * is NaN, max/min/clamp/sign drop NaN. The WGSL renderer of the formulas
 * (src/ir/scalar-lang.ts, wgslLang) relies on IEEE NaN semantics there.
 */

/** Generic cases of an elementwise op: same shape, broadcast both ways, empty, 0-d, scalar operands, int32 and bool. */
function elementwiseCases(name: string, arity: number, conf: EwConf): Case[] {
  const out: Case[] = [];
  const variants = conf.variants ?? [{ attrs: {} }];
  const dtypesFloat = conf.dtypes ?? Array<DType>(arity).fill('float32');
  for (const v of variants) {
    const tag = Object.keys(v.attrs).length ? `${JSON.stringify(v.attrs)} ` : '';
    const gens = v.gens ?? conf.gens ?? Array<DataGen>(arity).fill('signed');
    const run = (slots: (number | null)[]) => (xs: T[]) => {
      let k = 0;
      return apply(name, slots.map((s) => (s === null ? xs[k++] : s)), v.attrs);
    };
    const ins = (shapes: number[][], dts = dtypesFloat, gs = gens): In[] =>
      shapes.map((s, i) => ({ shape: s, dtype: dts[i], gen: gs[i] }));
    const all = (s: number[]) => Array.from({ length: arity }, () => s);
    const add = (label: string, inputs: In[], slots: (number | null)[] = inputs.map(() => null)) =>
      out.push(c(`${tag}${label}`, inputs, run(slots), { tol: conf.tol }));

    const s = oddShape();
    add(fmt(s), ins(all(s)));
    if (arity >= 2) {
      const b = bcastOf(s);
      // the broadcast operand in every position
      for (let k = 0; k < arity; k++) add(`broadcast: input ${k} ${fmt(b)}, others ${fmt(s)}`, ins(all(s).map((x, i) => (i === k ? b : x))));
      add(`both broadcast ${fmt([s[0], 1])} and ${fmt([1, pick(DIMS)])}`, ins(all([0]).map((_, i) => (i % 2 ? [1, 7] : [s[0], 1]))));
    }
    const e = emptyShape();
    add(`empty ${fmt(e)}`, ins(all(e)));
    if (arity >= 2) add(`empty ${fmt([0, 1])} with ${fmt([5])}`, ins(all([5]).map((x, i) => (i === 0 ? [0, 1] : x))));
    add('0-d', ins(all([])));
    if (arity >= 2) add(`0-d with ${fmt(s)}`, ins(all(s).map((x, i) => (i === 0 ? [] : x))));
    for (const sc of conf.scalars ?? []) {
      // a scalar in each operand position (the rest tensors)
      for (const k of conf.scalarPos ?? Array.from({ length: arity }, (_, i) => i)) {
        const slots = Array.from({ length: arity }, (_, i) => (i === k ? sc : null));
        const shapes = all(s).filter((_, i) => i !== k);
        add(`scalar ${sc} as operand ${k}, ${fmt(s)}`, ins(shapes, dtypesFloat.filter((_, i) => i !== k), gens.filter((_, i) => i !== k)), slots);
      }
    }
    if (conf.int && v.int !== false && (v.int || !conf.variants)) {
      const dts = conf.int.map((g): DType => (g === 'bool' ? 'bool' : 'int32'));
      add(`int32 ${fmt(s)}`, ins(all(s), dts, conf.int));
      if (arity >= 2) add(`int32 broadcast ${fmt(bcastOf(s))}`, ins(all(s).map((x, i) => (i === arity - 1 ? bcastOf(s) : x)), dts, conf.int));
      if (arity === 2) add(`int32 with int scalar 3`, ins([s], [dts[0]], [conf.int[0]]), [null, 3]);
      if (arity === 2 && conf.scalars?.some((x) => !Number.isInteger(x))) add(`int32 with scalar 2.5 (float result)`, ins([s], [dts[0]], [conf.int[0]]), [null, 2.5]);
    }
    if (conf.bool) {
      add(`bool ${fmt(s)}`, ins(all(s), Array<DType>(arity).fill('bool'), Array<DataGen>(arity).fill('bool')));
    }
    // NaN, inf and -inf operands (forward only); the fractional power of -inf is left out (see KNOWN_BUGS in the report)
    if (!(name === 'pow' && !Number.isInteger(v.attrs.exponent))) {
      const nf = gens.map((g): DataGen => (g === 'bool' ? 'bool' : 'nonfinite'));
      const inputs = ins(all(s), dtypesFloat, nf).map((x) => ({ ...x, grad: false }));
      out.push(c(`${tag}NaN, inf, -inf operands ${fmt(s)}`, inputs, run(inputs.map(() => null)), { knownBug: conf.nonfiniteBug }));
    }
  }
  return out;
}

function buildTable(): Record<string, Case[]> {
  const T: Record<string, Case[]> = {};
  const push = (op: string, ...cs: Case[]) => (T[op] ??= []).push(...cs);
  for (const op of allOps()) if (op.kind === 'elementwise' && EW_CONF[op.name]) push(op.name, ...elementwiseCases(op.name, op.arity, EW_CONF[op.name]));

  // --- elementwise extras: cast, methods over the registry ops, inf and -0
  const s = oddShape();
  for (const [from, gen] of [['float32', 'frac'], ['int32', 'int'], ['bool', 'bool']] as const) {
    for (const to of ['float32', 'int32', 'bool'] as const) {
      if (from === to) continue;
      push('cast', c(`${from} -> ${to} ${fmt(s)}`, [{ shape: s, dtype: from, gen, grad: false }], ([a]) => a.toDType(to)));
    }
  }
  push('cast', c('float32 -> float32 keeps the graph (gradient flows)', [f(s)], ([a]) => apply('cast', [a], { dtype: 'float32' }).mul(a)));
  push('cast', c('float -> int32 -> float cuts the graph', [f(s, 'frac')], ([a]) => a.int().float().add(a)));
  push('cast', c('empty float -> int32', [f(emptyShape(), 'frac', false)], ([a]) => a.int()));
  push('cast', c('0-d float -> bool', [f([], 'frac', false)], ([a]) => a.bool()));
  push('where', c('maskedFill(x.lt(0), 3)', [f(s)], ([a]) => a.maskedFill(a.lt(0), 3)));
  push('where', c('x.where(cond, other) with broadcast', [f(s), f(bcastOf(s))], ([a, b]) => a.where(a.gt(0), b)));
  push('where', c('torch.max(a, b) / torch.min(a, b) elementwise', [f(s, 'distinct'), f(s, 'distinct')], ([a, b]) => [torch.max(a, b), torch.min(a, b)]));
  push('where', c('int32 maskedFill', [i32(s), b8(s)], ([a, m]) => a.maskedFill(m, 7)));
  push('cast', c('NaN, inf -> bool (NaN is true)', [f(s, 'nonfinite', false)], ([a]) => a.bool()));
  const big = (shape: number[]) => i32(shape, 'bigint');
  push('copy', c('int32 beyond 2^24 is copied exactly (clone)', [big(s)], ([a]) => a.clone()));
  push('permute', c('int32 beyond 2^24 is moved exactly', [big([5, 70])], ([a]) => a.t()));
  push('expand', c('int32 beyond 2^24 is expanded exactly', [big([3, 1])], ([a]) => a.expand(3, 70)));
  push('relu', c('relu of int32 with zeros, and of -0', [i32(s)], ([a]) => [a.relu(), a.float().neg().relu()]));
  push('add', c('x + x (one buffer bound twice)', [f(s)], ([a]) => a.add(a)));
  push('mul', c('chain of elementwise ops on a permuted (strided) input', [f(oddShape(2, 2))], ([a]) => a.t().mul(2).add(1).tanh()));
  push('exp', c('exp of large magnitudes (overflow to inf, underflow to 0)', [], (_xs, dev) => torch.tensor([-200, -100, -50, 0, 50, 88, 89, 100, 200], { device: dev }).exp()));

  // --- reductions
  const r3 = randShape(3, 3);
  const r4 = randShape(4, 4);
  const sr = randShape(1, 4);
  const dim = Math.floor(R() * sr.length);
  push(
    'sum',
    c(`all of ${fmt(sr)}`, [f(sr, 'normal')], ([a]) => a.sum(), { tol: sumTol(numel(sr)) }),
    c(`dim ${dim} of ${fmt(sr)}`, [f(sr, 'normal')], ([a]) => a.sum(dim), { tol: RED }),
    c(`dim -1 keepdim of ${fmt(sr)}`, [f(sr, 'normal')], ([a]) => a.sum(-1, true), { tol: RED }),
    c(`dims [0,2] of ${fmt(r3)}`, [f(r3, 'normal')], ([a]) => a.sum([0, 2]), { tol: RED }),
    c(`dims [1,3] keepdim of ${fmt(r4)}`, [f(r4, 'normal')], ([a]) => a.sum([1, 3], true), { tol: RED }),
    c(`dims [0,1,2] of ${fmt(r3)} (one output, the kept dim last)`, [f([...r3, 3], 'normal')], ([a]) => a.sum([0, 1, 2]), { tol: sumTol(numel(r3)) }),
    c('[3, 5000] dim 1 (R not a multiple of 64)', [f([3, 5000], 'normal')], ([a]) => a.sum(1), { tol: RED }),
    c('[4097] all', [f([4097], 'normal')], ([a]) => a.sum(), { tol: sumTol(4097) }),
    c('over an empty dim: [3, 0, 4].sum(1) is zeros', [f([3, 0, 4])], ([a]) => a.sum(1), { tol: RED }),
    c('empty kept dims: [0, 5].sum(1)', [f([0, 5])], ([a]) => a.sum(1), { tol: RED }),
    c('0-d', [f([])], ([a]) => a.sum(), { tol: RED }),
    c('0-d keepdim over dim 0 of [1]', [f([1])], ([a]) => a.sum(0, true), { tol: RED }),
    c(`bool all -> int32, ${fmt(s)}`, [b8(s)], ([m]) => m.sum()),
    c(`bool dim -1 keepdim -> int32, ${fmt(r3)}`, [b8(r3)], ([m]) => m.sum(-1, true)),
    c(`int32 dim 0, ${fmt(r3)}`, [i32(r3)], ([a]) => a.sum(0)),
    c(`mean (sum then div) dims [0,2] of ${fmt(r3)}`, [f(r3, 'normal')], ([a]) => a.mean([0, 2]), { tol: RED, runs: ['sum', 'div'] }),
  );
  const sd = randShape(2, 3);
  const md = Math.floor(R() * sd.length);
  push(
    'max',
    c(`amax all of ${fmt(sd)}`, [f(sd, 'distinct')], ([a]) => a.max(), { tol: RED }),
    c(`max(dim ${md}) values and indices of ${fmt(sd)}`, [f(sd, 'distinct')], ([a]) => {
      const r = a.max(md);
      return [r.values, r.indices];
    }, { tol: RED, runs: ['max', 'argmax'] }),
    c(`max(dim -1, keepdim) of ${fmt(r3)}`, [f(r3, 'distinct')], ([a]) => a.max(-1, true).values, { tol: RED }),
    c(`amax dims [0,2] of ${fmt(r3)}`, [f(r3, 'distinct')], ([a]) => a.amax([0, 2]), { tol: RED }),
    c(`min(dim 0) of ${fmt(sd)}`, [f(sd, 'distinct')], ([a]) => {
      const r = a.min(0);
      return [r.values, r.indices];
    }, { tol: RED, runs: ['max', 'argmax', 'neg'] }),
    c('[2, 3000] dim 1 (R not a multiple of 64)', [f([2, 3000], 'distinct')], ([a]) => a.amax(1), { tol: RED }),
    c('0-d', [f([])], ([a]) => a.max(), { tol: RED }),
    c('empty kept dims: [0, 4].amax(1)', [f([0, 4])], ([a]) => a.amax(1), { tol: RED }),
    c(`int32 with ties, dim 1 of ${fmt([5, 67])}`, [i32([5, 67])], ([a]) => a.amax(1)),
    c('NaN propagates, inf and -inf', [f([6, 40], 'nonfinite', false)], ([a]) => [a.amax(1), a.amax(0)]),
    c('NaN propagates, several per lane (R = 300)', [f([3, 300], 'nonfinite', false)], ([a]) => a.amax(1)),
    c('all -inf', [f([3, 5], 'signed', false)], ([a]) => a.mul(Infinity).abs().neg().amax(1), { runs: ['max'] }),
    c('softmax / logSoftmax / logsumexp (composites over max and sum)', [f(oddShape(2, 3), 'normal')], ([a]) => [a.softmax(-1), a.logSoftmax(0), a.logsumexp(-1)], { tol: RED, runs: ['max', 'sum', 'exp', 'log'] }),
  );
  push(
    'argmax',
    c(`dim ${md} of ${fmt(sd)}`, [f(sd, 'distinct')], ([a]) => a.argmax(md)),
    c(`all (flat index) of ${fmt(r3)}`, [f(r3, 'distinct')], ([a]) => a.argmax()),
    c(`int32 ties pick the first index, dim 1 of ${fmt([6, 130])}`, [i32([6, 130])], ([a]) => [a.argmax(1), a.argmax(0, true)]),
    c(`bool ties, dim 0 of ${fmt([70, 3])}`, [b8([70, 3])], ([m]) => m.argmax(0)),
    c('0-d', [f([])], ([a]) => a.argmax()),
    c('[2, 3000] dim 1', [f([2, 3000], 'distinct')], ([a]) => a.argmax(1)),
    c('NaN is the max: the first NaN', [f([5, 40], 'nonfinite', false), f([4, 300], 'nonfinite', false)], ([a, b]) => [a.argmax(1), b.argmax(1), b.argmax()]),
  );
  // min, prod and argmin: rows of the reduction table (src/ir/reductions.ts) the same renderer reads
  push(
    'min',
    c(`amin all of ${fmt(sd)}`, [f(sd, 'distinct')], ([a]) => a.amin(), { tol: RED }),
    c(`amin dims [0,2] keepdim of ${fmt(r3)}`, [f(r3, 'distinct')], ([a]) => a.amin([0, 2], true), { tol: RED }),
    c('[2, 3000] dim 1 (R not a multiple of 64)', [f([2, 3000], 'distinct')], ([a]) => a.amin(1), { tol: RED }),
    c(`int32 with ties, dim 1 of ${fmt([5, 67])}`, [i32([5, 67])], ([a]) => a.amin(1)),
    c('NaN propagates, several per lane (R = 300)', [f([3, 300], 'nonfinite', false)], ([a]) => [a.amin(1), a.amin(0)]),
  );
  push(
    'prod',
    c(`prod dim ${md} of ${fmt(sd)} near 1`, [f(sd, 'signed')], ([a]) => a.mul(0.1).add(1).prod(md), { tol: RED, runs: ['prod', 'mul', 'add'] }),
    c('prod of a [3, 5]', [f([3, 5], 'signed')], ([a]) => [a.prod(1), a.prod()], { tol: RED }),
    c(`prod dims [0,2] of ${fmt(r3)} near 1`, [f(r3, 'signed')], ([a]) => a.mul(0.01).add(1).prod([0, 2]), { tol: RED, runs: ['prod', 'mul', 'add'] }),
    c('[2, 3000] dim 1 near 1 (R not a multiple of 64)', [f([2, 3000], 'signed')], ([a]) => a.mul(0.001).add(1).prod(1), { tol: RED, runs: ['prod', 'mul', 'add'] }),
    c('over an empty dim: [3, 0, 4].prod(1) is ones', [f([3, 0, 4])], ([a]) => a.prod(1)),
    c(`int32 dim 0 of ${fmt([3, 5])}`, [i32([3, 5])], ([a]) => a.prod(0)),
  );
  push(
    'argmin',
    c('argmin keepdim', [f(sd, 'distinct')], ([a]) => a.argmin(-1, true)),
    c(`int32 ties pick the first index, dim 1 of ${fmt([6, 130])}`, [i32([6, 130])], ([a]) => [a.argmin(1), a.argmin(0, true)]),
    c('NaN is the min: the first NaN', [f([4, 300], 'nonfinite', false)], ([b]) => [b.argmin(1), b.argmin()]),
  );

  // --- matmul
  const dimsMM = [1, 2, 3, 5, 17, 31, 64, 65, 100, 130];
  const [M, K, N] = [pick(dimsMM), pick(dimsMM), pick(dimsMM)];
  const mm = (label: string, a: number[], b: number[], fn: Case['fn'] = ([x, y]) => x.mm(y)) =>
    push('mm', c(`${label} ${fmt(a)} x ${fmt(b)}`, [f(a, 'normal'), f(b, 'normal')], fn, { tol: RED }));
  mm('', [1, 1], [1, 1]);
  mm('', [3, 4], [4, 2]);
  mm('odd', [67, 33], [33, 129]);
  mm('square', [64, 64], [64, 64]);
  mm('random', [M, K], [K, N]);
  mm('tall', [300, 5], [5, 7]);
  mm('long K', [5, 700], [700, 7]);
  mm('transposed operand', [M, K], [N, K], ([x, y]) => x.mm(y.t()));
  mm('K = 0 (zeros)', [5, 0], [0, 3]);
  mm('M = 0', [0, 4], [4, 3]);
  mm('N = 0', [4, 3], [3, 0]);
  push(
    'mm',
    c('matmul batched x 2-D, 1-D x 2-D', [f([2, 3, 4], 'normal'), f([4, 5], 'normal'), f([4], 'normal')],
      ([a, b, v]) => [a.matmul(b), v.matmul(b)], { tol: RED, runs: ['mm'] }),
    c('nn.functional.linear with bias', [f([7, 13], 'normal'), f([5, 13], 'normal'), f([5], 'normal')], ([x, w, b]) => torch.nn.functional.linear(x, w, b), { tol: RED }),
  );

  // --- batched matmul: batch strides (0 where broadcast), transposed and strided operands
  push(
    'bmm',
    c('bmm and batched matmul [2,3,4] x [2,4,5] x [2,5,3]', [f([2, 3, 4], 'normal'), f([2, 4, 5], 'normal'), f([2, 5, 3], 'normal')],
      ([a, b, d]) => [a.bmm(b), a.matmul(b).matmul(d)], { tol: RED, runs: ['bmm'] }),
    c('broadcast batch dims [3,1,5,6] x [1,4,6,7] and [5,6] x [2,6,3]', [f([3, 1, 5, 6], 'normal'), f([1, 4, 6, 7], 'normal'), f([5, 6], 'normal'), f([2, 6, 3], 'normal')],
      ([a, b, m, d]) => [a.matmul(b), m.matmul(d)], { tol: RED, runs: ['bmm'] }),
    c('attention-shaped [2,3,9,8] @ k^T, transposed operands', [f([2, 3, 9, 8], 'normal'), f([2, 3, 9, 8], 'normal')],
      ([q, k]) => [q.matmul(k.transpose(-2, -1)), q.transpose(-2, -1).matmul(k)], { tol: RED, runs: ['bmm'] }),
    c('rank 5 with mixed broadcast [2,1,3,4,5] x [1,2,3,5,4]', [f([2, 1, 3, 4, 5], 'normal'), f([1, 2, 3, 5, 4], 'normal')],
      ([a, b]) => [a.matmul(b)], { tol: RED, runs: ['bmm'] }),
  );

  // --- movement
  const pr = randShape(2, 4);
  const perm = randPerm(pr.length);
  const views = (label: string, inputs: In[], fn: Case['fn']) => push('reshape', c(label, inputs, fn, { runs: [] }));
  const asView = (base: T, v: T) => {
    if (v._storage !== base._storage) throw new Error('reshape did not return a view');
    return v;
  };
  views(`reshape ${fmt(pr)} -> [-1] is a view`, [f(pr)], ([a]) => asView(a, a.reshape(-1)).mul(2));
  views('view / flatten / unsqueeze / squeeze', [f([2, 3, 5])], ([a]) => asView(a, a.flatten(1).unsqueeze(0).squeeze(0).view(5, 6)).mul(a.reshape(5, 6)));
  views('reshape of empty [0, 3] -> [3, 0]', [f([0, 3])], ([a]) => a.reshape(3, 0).mul(2));
  views('reshape 0-d -> [1, 1]', [f([])], ([a]) => a.reshape(1, 1).mul(3));
  push('reshape', c('reshape of a permuted tensor (a copy, then a view)', [f(pr)], ([a]) => a.permute(perm).reshape(-1).mul(2), { runs: ['permute'] }));
  push(
    'permute',
    c(`permute ${fmt(perm)} of ${fmt(pr)}`, [f(pr)], ([a]) => a.permute(perm)),
    c('t() of an odd shape', [f(oddShape(2, 2))], ([a]) => a.t()),
    c('transpose(0, 2) of [4, 1, 70]', [f([4, 1, 70])], ([a]) => a.transpose(0, 2)),
    c('permute of an empty [2, 0, 3]', [f([2, 0, 3])], ([a]) => a.permute(2, 0, 1)),
    c('int32 and bool t()', [i32([5, 17]), b8([3, 70])], ([a, m]) => [a.t(), m.t()]),
    c('.T of rank 4', [f(randShape(4, 4))], ([a]) => a.T),
  );
  const eb = bcastOf(s);
  push(
    'expand',
    c(`expand ${fmt(eb)} -> ${fmt(s)}`, [f(eb)], ([a]) => a.expand(s)),
    c('expand [3,1] -> [3, 70]', [f([3, 1])], ([a]) => a.expand(3, 70)),
    c('expand 0-d -> [5, 3]', [f([])], ([a]) => a.expand(5, 3)),
    c('expand [1, 4] -> [0, 4] (empty)', [f([1, 4])], ([a]) => a.expand(0, 4)),
    c('expand with -1 and new leading dims', [f([1, 3, 1])], ([a]) => a.expand(2, -1, 65)),
    c('expandAs, int32 and bool', [i32([4, 1]), b8([1, 5]), f([4, 5])], ([a, m, x]) => [a.expandAs(x), m.expandAs(x)]),
  );

  // --- beyond the seed: elementwise extras and the index primitives
  const iv = (dev: Device, v: number[], shape?: number[]) => torch.tensor(v, { dtype: 'int32', device: dev, shape: shape ?? [v.length] });
  const randIdx = (n: number, size: number) => Array.from({ length: n }, () => Math.floor(R() * size));
  push('powt', c('negative bases with integer and fractional exponents, and x^0', [], (_xs, dev) =>
    torch.tensor([-2, -2, -2, 0, 0, 0, 3, -1.5, 2], { device: dev }).pow(torch.tensor([3, 2, 0.5, 0, -1, 2, 0, -3, 0.5], { device: dev }))));
  push('sin', c('sin / cos of larger arguments (|x| up to 100)', [f(s, 'normal', false)], ([a]) => [a.mul(30).sin(), a.mul(30).cos()], { runs: ['sin', 'cos'], tol: { rtol: 1e-5, atol: 2e-6 } }));
  push('erf', c('erf tails and gelu / silu (composites)', [f(s, 'normal')], ([a]) => [a.mul(3).erf(), a.gelu(), a.gelu({ approximate: 'tanh' }), a.silu()], { runs: ['erf', 'tanh', 'sigmoid'] }));
  const sl = randShape(2, 4, 2000);
  const sd0 = Math.floor(R() * sl.length);
  push(
    'slice',
    c(`narrow / select / a stepped index of ${fmt(sl)}`, [f(sl)], ([a]) => [
      a.narrow(sd0, Math.floor(sl[sd0] / 2), sl[sd0] - Math.floor(sl[sd0] / 2)),
      a.select(-1, -1),
      a.index(torch.slice(null, null, 2), torch.slice(1, null, 3)),
    ]),
    c('split / chunk of an odd shape, int32 and bool', [f(oddShape(2, 3)), i32([5, 70]), b8([7, 3])], ([a, k, m]) => [...a.split(2, -1), ...k.chunk(3, 1), ...m.split([3, 4], 0)]),
    c('a slice of a permuted tensor', [f([5, 70])], ([a]) => a.t().index(torch.slice(3, 60, 7), torch.slice(1, 4)), { runs: ['slice', 'permute'] }),
    c('int32 beyond 2^24 is sliced exactly', [i32([5, 70], 'bigint')], ([a]) => a.narrow(1, 3, 50)),
  );
  push(
    'sliceScatter',
    c(`cat along each dim, stack, of ${fmt(sl)}`, [f(sl), f(sl)], ([a, b]) => [...sl.map((_, d) => torch.cat([a, b, a], d)), torch.stack([a, b], -1)]),
    c('cat of int32 (beyond 2^24) and bool', [i32([4, 70], 'bigint'), i32([2, 70], 'bigint'), b8([3, 5]), b8([3, 2])], ([a, b, m, n]) => [torch.cat([a, b]), torch.cat([m, n], 1)]),
  );
  const gs = randShape(2, 3, 2000);
  const gd = Math.floor(R() * gs.length);
  const gi = gs.map((d, k) => (k === gd ? 1 + Math.floor(R() * 9) : d));
  const gidx = randIdx(numel(gi), gs[gd]);
  const [sel40, emb70, emb300] = [randIdx(40, 33), randIdx(70, 17), randIdx(300, 12)];
  push(
    'gather',
    c(`gather dim ${gd} of ${fmt(gs)} with index ${fmt(gi)}`, [f(gs)], ([a], dev) => a.gather(gd, iv(dev, gidx, gi))),
    c('indexSelect and an embedding lookup (rows repeat)', [f([17, 33])], ([e], dev) => [e.indexSelect(1, iv(dev, sel40)), e.index(iv(dev, emb70, [7, 10]))]),
    c('index with two tensors (negative entries) around a slice', [f([6, 5, 7])], ([a], dev) => a.index(iv(dev, [0, -1, 3, 5]), torch.slice(1, 4), iv(dev, [6, 0, -7, 2]))),
    c('int32 beyond 2^24 is gathered exactly', [i32([9, 13], 'bigint')], ([a], dev) => a.indexSelect(0, iv(dev, [8, 0, 8, 3]))),
    c('the gather kernel itself: an index out of range reads NaN on webgpu, never a number (cpu raises)', [], (_xs, dev) => {
      // the tensor methods check index values first (torch.gather etc.): this is the kernel's own guard
      const bad = () => torch.arange(5, { device: dev }).float()._gather(0, iv(dev, [1, 7, -1]));
      if (dev === 'cpu') {
        expect(bad).toThrow('index 7 is out of bounds for dimension 0 with size 5');
        return torch.tensor([1, NaN, NaN]);
      }
      return bad();
    }),
  );
  push(
    'scatterAdd',
    c(`the gradient of gather dim ${gd} (repeats add up)`, [f(gi)], ([g], dev) => g._scatterAdd(gd, iv(dev, gidx, gi), gs), { gradTol: RED }),
    c('a long index dim (an embedding gradient over 300 lookups)', [f([300, 16])], ([g], dev) => g._scatterAdd(0, iv(dev, emb300, [300, 1]).expand(300, 16), [12, 16]), { tol: RED }),
  );

  // a convolution's patch matrix and its gradient (src/ir/window.ts); conv2d's gradients use the transposed map
  const win = { kernel: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [1, 2], out: [3, 3], transposed: false, fill: 'zero' };
  push(
    'im2col',
    c('conv2d with stride, padding and dilation pairs (its input gradient reads the transposed map)', [f([2, 3, 7, 6]), f([4, 3, 3, 2]), f([4])], ([x, w, b]) =>
      torch.nn.functional.conv2d(x, w, b, { stride: [2, 1], padding: [1, 2], dilation: [1, 2] }),
    ),
    c('im2col itself: kernel [3, 2], stride [2, 1], padding [1, 0], dilation [1, 2]', [f([2, 3, 5, 5])], ([x]) => x._im2col(win)),
    c('avg pools (padding reads 0), their gradients through col2im', [f([2, 3, 6, 5], 'distinct')], ([x]) => [torch.nn.functional.avgPool2d(x, 2, { padding: 1 })]),
    c('max pools (padding reads -inf; overlapping windows, stride != kernel size), their gradients through col2imAt', [f([2, 3, 6, 5], 'distinct')], ([x]) => [
      torch.nn.functional.maxPool2d(x, 3, { stride: 2, padding: 1 }),
      torch.nn.functional.maxPool2d(x, [2, 3], { stride: [1, 2] }),
    ]),
  );
  push('col2im', c('col2im itself (overlapping windows add up)', [f([18, 18])], ([g]) => g._col2im({ ...win, shape: [2, 3, 5, 5] })));
  // a max pool's gradient: g at each window's argmax, summed over the windows an element lies in
  const argmaxes = Array.from({ length: 54 }, (_, k) => (k * 5) % 6);
  push(
    'col2imAt',
    c('col2imAt itself (several argmaxes land on one element)', [f([2, 3, 3, 3])], ([g], dev) =>
      apply('col2imAt', [g, torch.tensor(argmaxes, { shape: [2, 3, 3, 3], dtype: 'int32', device: dev })], { ...win, shape: [2, 3, 5, 5] }),
    ),
  );

  // --- sources
  const src = (label: string, fn: (dev: Device) => T | T[]) => c(label, [], (_xs, dev) => fn(dev));
  push(
    'full',
    src(`zeros / ones / full ${fmt(s)}`, (dev) => [torch.zeros(s, { device: dev }), torch.ones(s, { device: dev }), torch.full(s, -2.5, { device: dev })]),
    src('int32 and bool full', (dev) => [torch.full([130], 7, { device: dev, dtype: 'int32' }), torch.full([3, 5], 1, { device: dev, dtype: 'bool' }), torch.zeros(4, { device: dev, dtype: 'bool' })]),
    src('inf, -inf, NaN, -0', (dev) => [Infinity, -Infinity, NaN, -0].map((v) => torch.full([3], v, { device: dev }))),
    src('empty and 0-d', (dev) => [torch.zeros([0, 3], { device: dev }), torch.full([], 4, { device: dev })]),
    c('zerosLike / onesLike of an input', [i32([5, 13])], ([a]) => [torch.zerosLike(a), torch.onesLike(a)]),
  );
  push(
    'arange',
    src('arange(10), arange(5, -3, -2), arange(1000)', (dev) => [torch.arange(10, { device: dev }), torch.arange(5, -3, -2, { device: dev }), torch.arange(1000, { device: dev })]),
    src('float arange(0, 1, 0.1) and arange(0)', (dev) => [torch.arange(0, 1, 0.1, { device: dev }), torch.arange(0, { device: dev })]),
  );

  push(
    'check_index',
    // computed on the device (mul), so the check runs there and not on the host copy
    c('check_index passes indices in range through (out of range: test/bad-input*.test.ts)', [], (_xs, dev) => [
      checkIndex(torch.tensor([0, 3, 9, 4], { dtype: 'int32', device: dev }).mul(1), { op: 'test', what: 'index', lo: 0, hi: 10, bounds: 'for 10 classes', fix: '-' }),
    ], { runs: ['mul'] }),
  );

  // --- in place
  const ip = (op: string, method: string, label: string, inputs: In[], fn: Case['fn'], extra: Partial<Case> = {}) =>
    push(op, c(`${method}: ${label}`, inputs, fn, { inPlace: method, ...extra }));
  const nog = (shape: number[], gen: DataGen = 'signed') => f(shape, gen, false);
  const b = bcastOf(s);
  ip('add', 'add_', `${fmt(s)} += broadcast ${fmt(b)}`, [nog(s), nog(b)], ([x, y]) => x.add_(y));
  ip('add', 'add_', 'x += x (aliased twice)', [nog(s)], ([x]) => x.add_(x));
  ip('add', 'add_', 'scalar with alpha', [nog(s), nog(b)], ([x, y]) => x.add_(y, { alpha: -2 }).add_(1.5));
  ip('add', 'add_', 'int32', [i32(s), i32(b)], ([x, y]) => x.add_(y).add_(3));
  ip('add', 'add_', 'tracked (gradients through the in-place op)', [f(s), f(b)], ([x, y]) => x.mul(1).add_(y));
  ip('add', 'add_', 'on a view writes the base', [nog(s)], ([x]) => {
    x.view(-1).add_(1);
    return x;
  });
  ip('add', 'add_', 'empty and 0-d', [nog([0, 3]), nog([])], ([x, y]) => [x.add_(1), y.add_(2)]);
  ip('sub', 'sub_', `broadcast ${fmt(b)}`, [nog(s), nog(b)], ([x, y]) => x.sub_(y));
  ip('sub', 'sub_', 'tracked', [f(s), f(b)], ([x, y]) => x.mul(1).sub_(y, { alpha: 0.5 }));
  ip('mul', 'mul_', `broadcast ${fmt(b)}`, [nog(s), nog(b)], ([x, y]) => x.mul_(y));
  ip('mul', 'mul_', 'scalar and self', [nog(s)], ([x]) => x.mul_(-0.5).mul_(x));
  ip('mul', 'mul_', 'int32', [i32(s), i32(b)], ([x, y]) => x.mul_(y));
  ip('mul', 'mul_', 'tracked (the saved old value)', [f(s), f(b)], ([x, y]) => x.mul(1).mul_(y).mul_(x));
  ip('div', 'div_', `broadcast ${fmt(b)}`, [nog(s), nog(b, 'positive')], ([x, y]) => x.div_(y));
  ip('div', 'div_', 'tracked', [f(s), f(b, 'positive')], ([x, y]) => x.mul(1).div_(y));
  ip('where', 'maskedFill_', 'mask from a comparison', [nog(s)], ([x]) => x.maskedFill_(x.lt(0), 0));
  ip('where', 'maskedFill_', `broadcast mask ${fmt(b)}`, [nog(s), b8(b)], ([x, m]) => x.maskedFill_(m, -7.5));
  ip('where', 'maskedFill_', 'int32', [i32(s), b8(s)], ([x, m]) => x.maskedFill_(m, 9));
  ip('where', 'maskedFill_', 'tracked (the seed: gradH.maskedFill_(h.lt(0), 0))', [f(s), f(s)], ([h, g]) => g.mul(h).maskedFill_(h.lt(0), 0));
  ip('clamp', 'clamp_', '(-0.5, 0.7)', [nog(s, { awayFrom: [-0.5, 0.7] })], ([x]) => x.clamp_(-0.5, 0.7));
  ip('clamp', 'clamp_', 'int32 { min: 0 }', [i32(s)], ([x]) => x.clamp_({ min: 0 }));
  ip('clamp', 'clamp_', 'tracked', [f(s, { awayFrom: [0] })], ([x]) => x.mul(1).clamp_({ min: 0 }));
  ip('copy', 'copy_', 'same shape', [nog(s), nog(s)], ([x, y]) => x.copy_(y));
  ip('copy', 'copy_', `broadcast source ${fmt(b)}`, [nog(s), nog(b)], ([x, y]) => x.copy_(y), { runs: ['copy', 'expand'] });
  ip('copy', 'copy_', 'int32 source into float32 (cast)', [nog(s), i32(s)], ([x, y]) => x.copy_(y), { runs: ['copy', 'cast'] });
  ip('copy', 'copy_', 'int32 beyond 2^24, broadcast source', [i32([4, 70], 'bigint'), i32([70], 'bigint')], ([x, y]) => x.copy_(y), { runs: ['copy', 'expand'] });
  ip('copy', 'copy_', 'from a cpu source', [nog([4, 70])], ([x]) => x.copy_(torch.arange(280).float().reshape(4, 70)));
  ip('copy', 'copy_', 'tracked: the gradient flows to the source', [f(s), f(s)], ([x, y]) => x.mul(1).copy_(y));
  ip('full', 'zero_', fmt(s), [nog(s)], ([x]) => x.zero_());
  ip('full', 'zero_', 'int32, bool and empty', [i32(s), b8(s), nog([2, 0])], ([x, m, e]) => [x.zero_(), m.zero_(), e.zero_()]);
  ip('full', 'zero_', 'tracked (zero gradient)', [f(s)], ([x]) => x.mul(2).zero_().add(x));
  ip('full', 'fill_', 'tracked', [f(s)], ([x]) => x.mul(2).fill_(3).mul(x));
  ip('full', 'fill_', 'float, int32, bool, 0-d', [nog(s), i32(s), b8(s), nog([])], ([x, y, m, z]) => [x.fill_(2.5), y.fill_(-3), m.fill_(1), z.fill_(-1)]);
  ip('full', 'fill_', 'fill_ on a view writes the base', [nog(s)], ([x]) => {
    x.view(-1).fill_(4);
    return x;
  });
  return T;
}

// See test/helpers/webgpu-workarounds.ts (a reported bug in the context's wait estimator).
if (webgpuAvailable) disableWaitSleep();

const TABLE = buildTable();
const IN_PLACE = ['add_', 'sub_', 'mul_', 'div_', 'maskedFill_', 'clamp_', 'copy_', 'zero_', 'fill_'];

// ------------------------------------------------------------------ the runner
interface Observed {
  shape: number[];
  dtype: DType;
  device: Device;
  data: HostArray;
}
interface Run {
  outs: Observed[];
  /** per input that required grad */
  grads: (Observed | null)[];
  /** registry ops that ran (on webgpu: through the backend) */
  ran: Set<string>;
}

const ran = new Set<string>();
function spyExec(be: Backend): () => void {
  const orig = be.exec;
  be.exec = function (this: Backend, op, ...rest) {
    ran.add(op.name);
    return orig.call(this, op, ...rest);
  };
  return () => {
    be.exec = orig;
  };
}

async function observe(t: T): Promise<Observed> {
  return { shape: [...t.shape], dtype: t.dtype, device: t.device, data: await t.toArray() };
}

async function evaluate(cs: Case, data: HostArray[], dev: Device, seed: number): Promise<Run> {
  ran.clear();
  const xs = cs.inputs.map((inp, i) =>
    torch.tensor(data[i].slice(), { shape: inp.shape, dtype: inp.dtype, device: dev, requiresGrad: inp.grad ?? inp.dtype === 'float32' }),
  );
  const leaves = xs.filter((x) => x.requiresGrad);
  const outs = [cs.fn(xs, dev)].flat();
  const run: Run = { outs: [], grads: [], ran: new Set(ran) };
  for (const o of outs) run.outs.push(await observe(o));
  const diff = outs.filter((o) => o.requiresGrad);
  if (diff.length) {
    const wr = rng(seed ^ 0x5bd1e995);
    let L: T | null = null;
    for (const o of diff) {
      const w = torch.tensor(Float32Array.from({ length: o.numel() }, () => 0.5 + wr()), { shape: o.shape, device: dev });
      const term = o.mul(w).sum();
      L = L ? L.add(term) : term;
    }
    L!.backward();
    for (const x of leaves) run.grads.push(x.grad ? await observe(x.grad) : null);
  }
  return run;
}

const worst: { label: string; what: string; ratio: number }[] = [];

function expectSame(label: string, cpu: Run, gpu: Run, cs: Case) {
  const where = `${TAG} ${label}`;
  expect(gpu.outs.length, `${where}: number of outputs`).toBe(cpu.outs.length);
  cpu.outs.forEach((want, k) => {
    const got = gpu.outs[k];
    expect(got.device, `${where}: output ${k} device`).toBe('webgpu');
    expect(got.shape, `${where}: output ${k} shape`).toEqual(want.shape);
    expect(got.dtype, `${where}: output ${k} dtype`).toBe(want.dtype);
    const cmp = compareArrays(got.data, want.data, want.dtype, cs.tol ?? EW);
    worst.push({ label, what: `out ${k}`, ratio: cmp.ratio });
    expect(cmp.ok, `${where}: output ${k} ${want.dtype}${fmt(want.shape)}: ${cmp.detail}`).toBe(true);
  });
  expect(gpu.grads.length, `${where}: number of gradients`).toBe(cpu.grads.length);
  cpu.grads.forEach((want, k) => {
    const got = gpu.grads[k];
    if (!want || !got) {
      expect(got === null, `${where}: gradient ${k} present on one device only`).toBe(want === null);
      return;
    }
    expect(got.device, `${where}: grad ${k} device`).toBe('webgpu');
    expect(got.shape, `${where}: grad ${k} shape`).toEqual(want.shape);
    const cmp = compareArrays(got.data, want.data, want.dtype, cs.gradTol ?? GRAD);
    worst.push({ label, what: `grad ${k}`, ratio: cmp.ratio });
    expect(cmp.ok, `${where}: gradient of input ${k} ${fmt(want.shape)}: ${cmp.detail}`).toBe(true);
  });
}

let caseSeed = SEED;
function caseTest(op: string, cs: Case) {
  const seed = (caseSeed = (Math.imul(caseSeed, 1103515245) + 12345) >>> 0);
  // WGTORCH_KNOWN_BUGS=1 runs the known-bug cases as ordinary tests (to see their failures, or check a fix).
  const test = cs.knownBug && process.env.WGTORCH_KNOWN_BUGS !== '1' ? it.fails : it;
  test(`${op}: ${cs.label}${cs.knownBug ? ` [KNOWN BUG: ${cs.knownBug}]` : ''}`, async () => {
    const r = rng(seed);
    const data = cs.inputs.map((inp) => hostData(r, numel(inp.shape), inp.dtype, inp.gen));
    const cpu = await evaluate(cs, data, 'cpu', seed);
    const restore = spyExec(getBackend('webgpu'));
    let gpu: Run;
    try {
      gpu = await evaluate(cs, data, 'webgpu', seed);
      await torch.webgpu.synchronize(); // surfaces asynchronous device errors of this case
    } finally {
      restore();
    }
    for (const name of cs.runs ?? [op]) expect(gpu.ran, `${TAG} ${op}: ${cs.label}: op '${name}' ran on webgpu`).toContain(name);
    expectSame(`${op}: ${cs.label}`, cpu, gpu, cs);
  });
}

// ------------------------------------------------------------------ tests
describe('webgpu differential: the registry is covered', () => {
  it('every registry op has cases in the table', () => {
    const missing = allOps().map((o) => o.name).filter((n) => !(TABLE[n]?.length > 0));
    expect(missing, 'registry ops without a webgpu differential case: add them to buildTable()').toEqual([]);
  });
  it('the table names only registry ops', () => {
    const names = new Set(allOps().map((o) => o.name));
    expect(Object.keys(TABLE).filter((n) => !names.has(n))).toEqual([]);
  });
  it('every elementwise op has a generic configuration, and every in-place method a case', () => {
    const ew = allOps().filter((o) => o.kind === 'elementwise' && o.name !== 'cast').map((o) => o.name);
    expect(ew.filter((n) => !EW_CONF[n])).toEqual([]);
    const inPlace = new Set(Object.values(TABLE).flat().map((cs) => cs.inPlace));
    expect(IN_PLACE.filter((m) => !inPlace.has(m))).toEqual([]);
  });
  it('the comparison is tight enough to see an error: 1e-4 relative, a lost NaN, an int off by one', () => {
    const want = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 3);
    const off = want.map((v, i) => (i === 37 ? v * (1 + 1e-4) : v));
    expect(compareArrays(want.slice(), want, 'float32', EW).ok).toBe(true);
    for (const tol of [EW, RED, GRAD]) expect(compareArrays(off, want, 'float32', tol).ok).toBe(false);
    expect(compareArrays(Float32Array.of(0, 1), Float32Array.of(NaN, 1), 'float32', RED).ok).toBe(false);
    expect(compareArrays(Float32Array.of(Infinity), Float32Array.of(-Infinity), 'float32', RED).ok).toBe(false);
    expect(compareArrays(Int32Array.of(3), Int32Array.of(4), 'int32', RED).ok).toBe(false);
  });
  it('every differentiable op has a case that checks gradients', () => {
    const withGrad = allOps().filter((o) => o.grad).map((o) => o.name);
    const checked = withGrad.filter((n) => TABLE[n].some((cs) => cs.inputs.some((i) => i.dtype === 'float32' && i.grad !== false)));
    expect(checked).toEqual(withGrad);
  });
});

describe.runIf(webgpuAvailable)(`webgpu differential vs cpu ${TAG}`, () => {
  for (const [op, cases] of Object.entries(TABLE)) for (const cs of cases) caseTest(op, cs);

  afterAll(() => {
    if (!report) return;
    const top = [...worst].sort((a, b) => b.ratio - a.ratio).slice(0, 15);
    console.log(`${TAG} ${worst.length} comparisons; worst ratios to tolerance:\n` + top.map((w) => `${w.ratio.toFixed(3)}  ${w.what}  ${w.label}`).join('\n'));
    const c = torch.webgpu.counters();
    console.log(`pipelines compiled: ${c.pipelinesCompiled}`);
  });
});

describe.runIf(webgpuAvailable)(`webgpu differential: shapes that need the 2D dispatch fold ${TAG}`, () => {
  /** Runs fn on both devices and checks the values, and that some dispatch folded into 2D. */
  async function large(label: string, inputs: In[], fn: (xs: T[]) => T[], tol: Tol) {
    const seed = (caseSeed = (Math.imul(caseSeed, 1103515245) + 12345) >>> 0);
    const r = rng(seed);
    const data = inputs.map((inp) => hostData(r, numel(inp.shape), inp.dtype, inp.gen));
    const make = (dev: Device) => inputs.map((inp, i) => torch.tensor(data[i], { shape: inp.shape, dtype: inp.dtype, device: dev }));
    const want = fn(make('cpu'));
    const ctx = torch.webgpu.context();
    const grids: (readonly number[])[] = [];
    const orig = ctx.dispatch;
    ctx.dispatch = function (this: typeof ctx, ...args: Parameters<typeof ctx.dispatch>) {
      grids.push(args[3]);
      return orig.apply(this, args);
    };
    let got: T[];
    try {
      got = fn(make('webgpu'));
      await torch.webgpu.synchronize();
    } finally {
      ctx.dispatch = orig;
    }
    expect(grids.some((g) => g[1] > 1), `${TAG} ${label}: a dispatch folded into 2D (grids ${JSON.stringify(grids)})`).toBe(true);
    for (let k = 0; k < want.length; k++) {
      expect(got[k].shape).toEqual(want[k].shape);
      const cmp = compareArrays(await got[k].toArray(), want[k].toArraySync(), want[k].dtype, tol);
      expect(cmp.ok, `${TAG} ${label}: output ${k}: ${cmp.detail}`).toBe(true);
    }
  }
  // 65535 workgroups of 64 invocations hold 4,194,240 elements.
  it('elementwise over 4.3M elements: direct and broadcast (strided) reads', async () => {
    await large('mul/relu [2150, 2000]', [f([2150, 2000], 'normal'), f([2000], 'normal')], ([a, b]) => [a.mul(b), a.relu()], EW);
  }, 60_000);
  it('reductions with more than 65535 outputs: sum, max, argmax over dim 1 of [70001, 3]', async () => {
    await large('reduce [70001, 3]', [f([70001, 3], 'distinct')], ([a]) => [a.sum(1), a.amax(1), a.argmax(1)], RED);
  }, 60_000);
});
