/**
 * Elementwise and reduction kernels as JavaScript, rendered from the same kernel
 * IR bodies the WGSL generators read (ElementwiseBody, ReduceBody: expression trees over
 * a kernel's inputs, scalars and earlier nodes) plus the sizes and strides of one compiled
 * graph, which become constants of the loop. One function per kernel, built once with
 * `new Function`: `(ins, outs, sc) => void` over typed arrays.
 *
 * Values inside a kernel stay doubles and are rounded to float32 where they are stored (a
 * Math.fround per node, as eager ops round at every store, made the Adam epilogue 2.5x
 * slower); sums accumulate in doubles in the order of the eager reduction. So a fused kernel
 * agrees with the eager ops within float32 rounding, not bit for bit.
 */
import type { DType } from '../ir/dtype.ts';
import { getOp } from '../ir/registry.ts';
import { foldExpr, preferExpr, REDUCTIONS } from '../ir/reductions.ts';
import { jsLang, type ScalarLang } from '../ir/scalar-lang.ts';
import { exp as fastExp } from './fast-math.ts';
import { mergeDims as mergeNestDims } from './loop-nest.ts';
import type { ElementwiseBody, ExprNode, Ref, ReduceBody } from '../passes/kernel-ir.ts';
import { isIntReduce } from '../passes/int-kernels.ts';
import { stridesOf } from '../ir/shape.ts';

export type JsKernel = (ins: ArrayLike<number>[], outs: { [i: number]: number }[], sc: number[]) => void;

/**
 * The formulas of the generated loops: the registry's JavaScript, with e^x as `EXP`, the
 * inlinable exp of fast-math.ts (every kernel function sees it).
 */
export const cpuLang: ScalarLang = {
  ...jsLang,
  call(fn, ...a) {
    return fn === 'exp' ? `EXP(${a[0]})` : jsLang.call.call(this, fn, ...a);
  },
};

const cache = new Map<string, JsKernel>();
/** Compiles a rendered kernel (one Function per distinct source text). */
export function compileJs(source: string): JsKernel {
  let f = cache.get(source);
  if (!f) {
    f = new Function('EXP', `return function kernel(ins, outs, sc) {\n${source}\n};`)(fastExp) as JsKernel;
    cache.set(source, f);
  }
  return f;
}

interface Names {
  input(index: number): string;
  scalar(index: number): string;
  prefix: string;
}

function refName(r: Ref, names: Names): string {
  switch (r.kind) {
    case 'input': return names.input(r.index);
    case 'scalar': return names.scalar(r.index);
    case 'node': return `${names.prefix}${r.index}`;
    case 'acc': return 'acc';
    case 'element': throw new Error('internal compiler error: a cpu loop has no matmul operand element');
    case 'stat': return `r${r.index}`;
    case 'index': throw new Error('internal compiler error: only a row kernel recomputes an arange from its index');
  }
}

function renderNodes(nodes: ExprNode[], names: Names, indent: string): string[] {
  return nodes.map((n, i) => {
    const op = getOp(n.op);
    if (!op.formula) throw new Error(`op ${n.op} has no elementwise formula`);
    const expr = op.formula(cpuLang, n.args.map((a) => refName(a, names)), n.attrs);
    const note = n.origin ? ` // ${n.origin.ids.map((id) => `%${id}`).join(' ')} ${n.op}${n.origin.scope ? ` (${n.origin.scope})` : ''}` : '';
    return `${indent}const ${names.prefix}${i} = ${expr};${note}`;
  });
}

/** A value converted to how its dtype stores it (WGSL's storeAs, in JavaScript). */
function storeAs(dtype: DType, v: string): string {
  return dtype === 'bool' ? `(${v} !== 0 ? 1 : 0)` : v;
}

/** loop-nest.ts's merged dims, with one dim of 1 for a loop over a single element (rank 0, all size-1 dims) */
function mergeDims(shape: readonly number[], strides: number[][]): { dims: number[]; strides: number[][] } {
  const m = mergeNestDims(shape, strides);
  return m.dims.length ? m : { dims: [1], strides: strides.map(() => [0]) };
}


/**
 * Nested loops over `dims`; `offsets[k]` is the stride of array k per dim. The innermost body
 * sees `p{k}` (array k's element offset) and `i` (the linear index, when `linear`).
 */
function loops(dims: number[], strides: number[][], body: string[], indent: string, tag: string): string[] {
  const lines: string[] = [];
  const open = (level: number, pad: string) => {
    const v = `${tag}i${level}`;
    const prev = (k: number) => (level === 0 ? '0' : `${tag}p${k}_${level - 1}`);
    lines.push(`${pad}for (let ${v} = 0; ${v} < ${dims[level]}; ${v}++) {`);
    strides.forEach((s, k) => lines.push(`${pad}  const ${tag}p${k}_${level} = ${prev(k)} + ${v} * ${s[level]};`));
    if (level + 1 < dims.length) open(level + 1, pad + '  ');
    else lines.push(...body.map((l) => pad + '  ' + l));
    lines.push(`${pad}}`);
  };
  open(0, indent);
  return lines;
}

/**
 * An elementwise kernel over `shape`. strides[k]: input k's strides per output dim (null: read
 * directly at the output's index).
 */
export function elementwiseJs(spec: ElementwiseBody, shape: readonly number[], strides: (number[] | null)[], header: string[] = []): string {
  const total = shape.reduce((a, b) => a * b, 1);
  const strided = spec.inputs.map((inp, k) => (inp.access === 'strided' || inp.access === 'gather' ? k : -1)).filter((k) => k >= 0);
  const names: Names = {
    input: (k) => `x${k}`,
    scalar: (k) => `s${k}`,
    prefix: 'n',
  };
  const lines = [...header.map((h) => `// ${h}`)];
  spec.inputs.forEach((inp, k) => {
    if (inp.access !== 'alias') lines.push(`const in${k} = ins[${k}];`);
  });
  spec.outputs.forEach((_, j) => lines.push(`const out${j} = outs[${j}];`));
  for (let s = 0; s < spec.scalars; s++) lines.push(`const s${s} = sc[${s}];`);
  const used = new Set(spec.nodes.flatMap((n) => n.args.filter((a) => a.kind === 'input').map((a) => a.index)));
  for (const o of spec.outputs) if (o.ref.kind === 'input') used.add(o.ref.index);
  for (const k of [...used]) if (spec.inputs[k].access === 'gather') used.add(spec.inputs[k].gather!.index);
  const body: string[] = [];
  for (const k of used) {
    const inp = spec.inputs[k];
    if (inp.access === 'gather') continue;
    if (inp.access === 'direct') body.push(`const x${k} = in${k}[i];`);
    else if (inp.access === 'alias') body.push(`const x${k} = out${inp.aliasOf ?? 0}[i];`);
    else body.push(`const x${k} = in${k}[L${strided.indexOf(k)}];`);
  }
  // gathered elements, after the indices they read: NaN for an index outside the gathered dim
  for (const k of used) {
    const inp = spec.inputs[k];
    if (inp.access !== 'gather') continue;
    const { index, dimStride, size } = inp.gather!;
    body.push(`const x${k} = x${index} >= 0 && x${index} < ${size} ? in${k}[L${strided.indexOf(k)} + x${index} * ${dimStride}] : NaN;`);
  }
  body.push(...renderNodes(spec.nodes, names, ''));
  spec.outputs.forEach((o, j) => body.push(`out${j}[i] = ${storeAs(o.dtype, refName(o.ref, names))};`));
  if (!strided.length) {
    lines.push(`for (let i = 0; i < ${total}; i++) {`, ...body.map((l) => '  ' + l), '}');
    return lines.join('\n');
  }
  // the output's own row-major strides ride along, so `i` is an offset like the others
  const m = mergeDims(shape, [stridesOf(shape), ...strided.map((k) => strides[k]!)]);
  const inner = [`const i = Lp0_${m.dims.length - 1};`, ...strided.map((_, s) => `const L${s} = Lp${s + 1}_${m.dims.length - 1};`), ...body];
  lines.push(...loops(m.dims, m.strides, inner, '', 'L'));
  return lines.join('\n');
}

/**
 * A reduction: for every kept index, the prologue per reduced element, combined into `acc`,
 * then the epilogue; strides[k] are input k's strides over (kept dims, then reduced dims).
 */
export function reduceJs(spec: ReduceBody, kept: readonly number[], reduced: readonly number[], strides: number[][], header: string[] = []): string {
  const lines = [...header.map((h) => `// ${h}`)];
  spec.inputs.forEach((_, k) => lines.push(`const in${k} = ins[${k}];`));
  spec.outputs.forEach((_, j) => lines.push(`const out${j} = outs[${j}];`));
  for (let s = 0; s < spec.scalars; s++) lines.push(`const s${s} = sc[${s}];`);
  const keptStrides = strides.map((s) => s.slice(0, kept.length));
  const redStrides = strides.map((s) => s.slice(kept.length));
  const R = reduced.reduce((a, b) => a * b, 1);
  const inner: string[] = [];
  const pro: Names = { input: (k) => `x${k}`, scalar: (k) => `s${k}`, prefix: 'p' };
  const usedPro = new Set(spec.prologue.flatMap((n) => n.args.filter((a) => a.kind === 'input').map((a) => a.index)));
  if (spec.value.kind === 'input') usedPro.add(spec.value.index);
  for (const k of usedPro) inner.push(`const x${k} = in${k}[K${k} + R${k}];`);
  inner.push(...renderNodes(spec.prologue, pro, ''));
  const v = refName(spec.value, pro);
  const red = REDUCTIONS[spec.combine];
  // folds accumulate in doubles, as the eager kernel does; a select keeps NaN, as PyTorch does.
  // Integers fold wrapping at every step, as PyTorch's int32 does (a double sum rounds past 2^53).
  const int = isIntReduce(spec);
  if (red.kind === 'fold') inner.push(int ? `acc = ${red.op === 'add' ? `(acc + ${v}) | 0` : `Math.imul(acc, ${v})`};` : `acc = ${foldExpr(red, 'acc', v)};`);
  else inner.push(`if (${preferExpr(red, cpuLang, v, 'acc')} !== 0) { acc = ${v}; at = r; }`, 'r++;');
  // reduced loops: offsets per input relative to the kept base
  const redBody = (() => {
    if (!reduced.length) return inner.map((l) => l.replace(/R(\d+)/g, '0'));
    const m = { dims: [...reduced], strides: redStrides };
    const body = [...spec.inputs.map((_, k) => `const R${k} = Rp${k}_${m.dims.length - 1};`), ...inner];
    return loops(m.dims, m.strides, body, '', 'R');
  })();
  const epi: Names = { input: (k) => `x${k}`, scalar: (k) => `s${k}`, prefix: 'e' };
  const keptBody = [
    red.kind === 'fold' ? `let acc = ${cpuLang.lit(red.identity)};` : `let acc = ${cpuLang.lit(red.identity)}; let at = 0; let r = 0;`,
    ...redBody,
    ...(red.kind === 'select' ? [red.index ? 'acc = at;' : `if (${R} === 0) acc = NaN;`] : int ? [] : ['acc = Math.fround(acc);']),
    ...renderNodes(spec.epilogue, epi, ''),
    ...spec.outputs.map((o, j) => `out${j}[o] = ${storeAs(o.dtype, refName(o.ref, epi))};`),
    'o++;',
  ];
  lines.push('let o = 0;');
  if (!kept.length) {
    lines.push(...spec.inputs.map((_, k) => `const K${k} = 0;`), ...keptBody);
  } else {
    const body = [...spec.inputs.map((_, k) => `const K${k} = Kp${k}_${kept.length - 1};`), ...keptBody];
    lines.push(...loops([...kept], keptStrides, body, '', 'K'));
  }
  return lines.join('\n');
}
