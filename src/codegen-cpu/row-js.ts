/**
 * Row kernels (kernel IR `RowBody`) as JavaScript: for each row (kept index), each reduction
 * step a loop over the row's elements, each map step one expression, then a loop writing the
 * element outputs; sizes and strides are constants. Sums run in doubles in the eager kernel's
 * order and are rounded to float32 like a stored sum, so the result agrees with eager cpu
 * within float32 rounding. A body with totals combines a per-row value of every row into an
 * accumulator as the rows go by, and computes its total steps after the last row.
 */
import { getOp } from '../ir/registry.ts';
import { cpuLang } from './js-kernels.ts';
import type { ExprNode, Ref, RowBody } from '../passes/kernel-ir.ts';
import type { WindowMap } from '../ir/window.ts';

/** a recomputed arange: its element index from the loop counters (Ki<d> over kept dims, then Ri<d> over reduced dims) */
function indexJs(r: Extract<Ref, { kind: 'index' }>, keptRank: number): string {
  const terms = r.strides.flatMap((s, d) => (s === 0 ? [] : [`${d < keptRank ? `Ki${d}` : `Ri${d - keptRank}`} * ${s}`]));
  const i = terms.length ? terms.join(' + ') : '0';
  return r.start === 0 && r.step === 1 ? `(${i})` : `(${r.start} + ${r.step} * (${i}))`;
}

function refName(r: Ref, prefix: string, keptRank: number): string {
  switch (r.kind) {
    case 'input': return `x${r.index}`;
    case 'scalar': return `s${r.index}`;
    case 'node': return `${prefix}${r.index}`;
    case 'stat': return `r${r.index}`;
    case 'index': return indexJs(r, keptRank);
    default: throw new Error(`internal compiler error: a row kernel has no ${r.kind} value`);
  }
}

function renderNodes(nodes: ExprNode[], prefix: string, input: (k: number) => string, keptRank: number): string[] {
  return nodes.map((n, i) => {
    const op = getOp(n.op);
    if (!op.formula) throw new Error(`op ${n.op} has no elementwise formula`);
    const args = n.args.map((a) => (a.kind === 'input' ? input(a.index) : refName(a, prefix, keptRank)));
    const note = n.origin ? ` // ${n.origin.ids.map((id) => `%${id}`).join(' ')} ${n.op}${n.origin.scope ? ` (${n.origin.scope})` : ''}` : '';
    return `const ${prefix}${i} = ${op.formula(cpuLang, args, n.attrs)};${note}`;
  });
}

/** Ops that cost a call (e^x, a log, ...): worth keeping per element rather than computing twice. */
const COSTLY = new Set(['exp', 'log', 'tanh', 'sigmoid', 'erf', 'pow', 'sin', 'cos']);

/** A structural key per node of a list: equal keys compute the same double from the same operands. */
function nodeKeys(nodes: ExprNode[]): string[] {
  const keys: string[] = [];
  const arg = (a: Ref): string => (a.kind === 'node' ? `(${keys[a.index]})` : JSON.stringify(a));
  for (const n of nodes) keys.push(`${n.op}:${n.dtype ?? ''}:${JSON.stringify(n.attrs)}[${n.args.map(arg).join(',')}]`);
  return keys;
}

/**
 * The element nodes whose value a reduction step's pass already computed (softmax's
 * e^(x - max), summed in one pass and divided in the last): element node -> [step, node of
 * that step]. The step's pass keeps those values of the row in a buffer; the element pass
 * reads them back instead of calling exp again (the same double, so the same bits).
 */
export function reusedValues(b: RowBody): Map<number, [number, number]> {
  const stepKeys = b.steps.map((st) => (st.kind === 'reduce' ? nodeKeys(st.nodes) : []));
  const keys = nodeKeys(b.nodes);
  const reuse = new Map<number, [number, number]>();
  b.nodes.forEach((n, i) => {
    if (!COSTLY.has(n.op)) return;
    for (let s = 0; s < stepKeys.length; s++) {
      const j = stepKeys[s].indexOf(keys[i]);
      if (j >= 0) {
        reuse.set(i, [s, j]);
        return;
      }
    }
  });
  return reuse;
}

const inputsRead = (nodes: ExprNode[], extra: Ref[] = []) =>
  [...new Set([...nodes.flatMap((n) => n.args), ...extra].filter((a) => a.kind === 'input').map((a) => (a as { index: number }).index))].sort((a, b) => a - b);

/** Nested loops over `dims` carrying one offset per stride list: `${tag}{k}` inside. */
function nest(dims: number[], strides: number[][], tag: string, body: string[], pad: string): string[] {
  const out: string[] = [];
  const open = (d: number, p: string) => {
    if (d === dims.length) {
      out.push(...body.map((l) => p + l));
      return;
    }
    out.push(`${p}for (let ${tag}i${d} = 0; ${tag}i${d} < ${dims[d]}; ${tag}i${d}++) {`);
    strides.forEach((s, k) => out.push(`${p}  const ${tag}${k}_${d + 1} = ${tag}${k}_${d} + ${tag}i${d} * ${s[d]};`));
    open(d + 1, p + '  ');
    out.push(`${p}}`);
  };
  open(0, pad);
  return out;
}

/** NaN propagates, as in PyTorch (and the eager kernel) */
const maxInto = (acc: string, v: string) => `if (${v} > ${acc} || (${v} !== ${v} && ${acc} === ${acc})) ${acc} = ${v};`;

export function rowJs(b: RowBody, header: string[] = []): string {
  const keptRank = b.kept.length;
  const elementOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'element');
  const rowOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'row');
  const totalOuts = b.outputs.map((o, j) => ({ o, j })).filter(({ o }) => o.per === 'total');
  const lines = [...header.map((h) => `// ${h}`)];
  b.inputs.forEach((_, k) => lines.push(`const in${k} = ins[${k}];`));
  b.outputs.forEach((_, j) => lines.push(`const out${j} = outs[${j}];`));
  for (let s = 0; s < b.scalars; s++) lines.push(`const s${s} = sc[${s}];`);
  // strides per array: the inputs, then the element outputs
  const all = [...b.inputs.map((t) => t.strides!), ...elementOuts.map(({ o }) => o.strides!)];
  const keptStrides = all.map((s) => s.slice(0, keptRank));
  const redStrides = all.map((s) => s.slice(keptRank));
  const base = (k: number) => `K${k}_${keptRank}`;
  const at = (k: number) => `${base(k)} + R${k}_${b.reduced.length}`;
  /** the element's flat index along the row */
  const reducedIndex = b.reduced.map((_, d) => `Ri${d} * ${b.reduced.slice(d + 1).reduce((p, x) => p * x, 1)}`).join(' + ') || '0';
  /**
   * input k's element: a gathered one (rule [gather-load]) from its source at the index read
   * beside it, NaN for an index outside the gathered dim, as the gather kernel reads
   */
  const loadInput = (k: number): string[] => {
    const t = b.inputs[k]!;
    if (t.access === 'window') return windowLoadJs(t.window!, `x${k}`, `in${k}`, 'o', reducedIndex);
    if (t.access !== 'gather') return [`const x${k} = in${k}[${at(k)}];`];
    const { index, dimStride, size } = t.gather!;
    return [`const g${k} = in${index}[${at(index)}];`, `const x${k} = g${k} >= 0 && g${k} < ${size} ? in${k}[${at(k)} + g${k} * ${dimStride}] : NaN;`];
  };
  const mapInput = (k: number) => {
    if (b.inputs[k]!.access === 'gather' || b.inputs[k]!.access === 'window') throw new Error("internal compiler error: a row kernel's map step reads a gathered or windowed input, which is loaded per element");
    return `in${k}[${base(k)}]`;
  };
  const rowBody: string[] = [];
  // `t`: the element's place in the row, where a pass keeps values for a later one
  const rowLoop = (used: number[], inner: string[], counted = false) => {
    const loads = used.flatMap(loadInput);
    const seed = all.map((_, k) => `const R${k}_0 = 0;`);
    const count = counted ? ['let t = 0;'] : [];
    return ['{', ...[...seed, ...count].map((l) => '  ' + l), ...nest(b.reduced, redStrides, 'R', [...loads, ...inner, ...(counted ? ['t++;'] : [])], '  '), '}'];
  };
  const reuse = reusedValues(b);
  const kept = (s: number) => [...new Set([...reuse.values()].filter(([q]) => q === s).map(([, j]) => j))];
  const rowLength = b.reduced.reduce((p, n) => p * n, 1);
  b.steps.forEach((_, s) => {
    for (const j of kept(s)) lines.push(`const t${s}_${j} = new Float64Array(${rowLength});`);
  });
  b.steps.forEach((st, s) => {
    if (st.kind === 'map') {
      rowBody.push(...renderNodes([st.node], `m${s}_`, mapInput, keptRank), `const r${s} = m${s}_0;`);
      return;
    }
    const v = st.value.kind === 'input' ? `x${st.value.index}` : refName(st.value, `a${s}_`, keptRank);
    const arg = st.combine === 'argmax';
    // NaN propagates, as in PyTorch (and the eager kernel); argmax: the first maximum's index along the row
    const combine =
      st.combine === 'sum'
        ? [`acc += ${v};`]
        : arg
          ? [`if (${v} > acc || (${v} !== ${v} && acc === acc)) { acc = ${v}; at = ${reducedIndex}; }`]
          : [maxInto('acc', v)];
    rowBody.push(st.combine === 'sum' ? 'acc = 0;' : 'acc = -Infinity;', ...(arg ? ['at = 0;'] : []));
    const keep = kept(s).map((q) => `t${s}_${q}[t] = a${s}_${q};`);
    rowBody.push(...rowLoop(inputsRead(st.nodes, [st.value]), [...renderNodes(st.nodes, `a${s}_`, (k) => `x${k}`, keptRank), ...keep, ...combine], keep.length > 0));
    // a max stays the double it is: an element recomputed later must compare equal to it (argmax masks)
    rowBody.push(st.combine === 'sum' ? `const r${s} = Math.fround(acc);` : arg ? `const r${s} = at;` : `const r${s} = acc;`);
  });
  if (elementOuts.length) {
    const stores = elementOuts.map(({ o, j }, e) => `out${j}[${at(b.inputs.length + e)}] = ${store(o.dtype, refName(o.ref, 'v', keptRank))};`);
    // the nodes the stores need, not through a value an earlier pass kept
    const live = new Set<number>();
    const visit = (r: Ref) => {
      if (r.kind !== 'node' || live.has(r.index)) return;
      live.add(r.index);
      if (!reuse.has(r.index)) b.nodes[r.index].args.forEach(visit);
    };
    elementOuts.forEach(({ o }) => visit(o.ref));
    const computed = b.nodes.filter((_, i) => live.has(i) && !reuse.has(i));
    const nodes = renderNodes(b.nodes, 'v', (k) => `x${k}`, keptRank).flatMap((line, i) => {
      if (!live.has(i)) return [];
      const r = reuse.get(i);
      return r ? [`const v${i} = t${r[0]}_${r[1]}[t]; // ${b.nodes[i].op}, kept by step ${r[0]}`] : [line];
    });
    rowBody.push(...rowLoop(inputsRead(computed, elementOuts.map(({ o }) => o.ref)), [...nodes, ...stores], reuse.size > 0));
  }
  for (const { o, j } of rowOuts) rowBody.push(`out${j}[o] = ${store(o.dtype, refName(o.ref, 'v', keptRank))};`);
  // totals: each row's value (rounded as the stored per-row tensor eager sums) into its accumulator
  const totals = b.total ?? [];
  const S = b.steps.length;
  totals.forEach((st, t) => {
    if (st.kind !== 'reduce') return;
    const v = st.value.kind === 'input' ? `in${st.value.index}[${base(st.value.index)}]` : refName(st.value, '', keptRank);
    rowBody.push(`{ const tv = Math.fround(${v}); ${st.combine === 'sum' ? `t${t} += tv;` : maxInto(`t${t}`, 'tv')} }`);
  });
  rowBody.push('o++;');
  lines.push('let o = 0;', 'let acc = 0;', 'let at = 0;', ...all.map((_, k) => `const K${k}_0 = 0;`));
  totals.forEach((st, t) => st.kind === 'reduce' && lines.push(`let t${t} = ${st.combine === 'sum' ? '0' : '-Infinity'};`));
  // before the rows: values over every row from inputs alone (row-pretotals.ts), which the rows read
  (b.pre ?? []).forEach((st, p) => {
    const s = S + totals.length + p;
    if (st.kind === 'map') {
      lines.push(...renderNodes([st.node], `m${s}_`, (k) => `in${k}[0]`, keptRank), `const r${s} = m${s}_0;`);
      return;
    }
    const v = st.value.kind === 'input' ? `in${st.value.index}[${base(st.value.index)}]` : refName(st.value, `p${p}_`, keptRank);
    const pass = [...renderNodes(st.nodes, `p${p}_`, (k) => `in${k}[${base(k)}]`, keptRank), st.combine === 'sum' ? `pt${p} += ${v};` : maxInto(`pt${p}`, v)];
    lines.push(`let pt${p} = ${st.combine === 'sum' ? '0' : '-Infinity'};`, '{', ...nest(b.kept, keptStrides, 'K', pass, '  '), '}');
    lines.push(st.combine === 'sum' ? `const r${s} = Math.fround(pt${p});` : `const r${s} = pt${p};`);
  });
  lines.push(...nest(b.kept, keptStrides, 'K', rowBody, ''));
  totals.forEach((st, t) => {
    if (st.kind === 'reduce') lines.push(st.combine === 'sum' ? `const r${S + t} = Math.fround(t${t});` : `const r${S + t} = t${t};`);
    else lines.push(...renderNodes([st.node], `m${S + t}_`, (k) => `in${k}[0]`, keptRank), `const r${S + t} = m${S + t}_0;`);
  });
  for (const { o, j } of totalOuts) lines.push(`out${j}[0] = ${store(o.dtype, refName(o.ref, 'v', keptRank))};`);
  return lines.join('\n');
}

/**
 * `const v = ` element (m, q) of an im2col's patch matrix, read from `src` through the (forward)
 * index map, the map's fill outside the source (rule [window-load]).
 */
function windowLoadJs(w: WindowMap, v: string, src: string, m: string, q: string): string[] {
  if (w.transposed) throw new Error('internal compiler error: a row kernel reads an im2col through the transposed map');
  const [R0, R1] = w.rows;
  const [kh, kw] = w.kernel;
  const [s0, s1, s2, s3] = w.strides;
  const p = `${v}_`;
  const pl = w.planes;
  const image = (n: string) => (pl ? `Math.floor(${n} / ${pl.channels}) * ${pl.outer} + (${n} % ${pl.channels}) * ${pl.inner}` : `${n} * ${s0}`);
  return [
    `const ${p}m = ${m}, ${p}q = ${q};`,
    `const ${p}y = (Math.floor(${p}m / ${R1}) % ${R0}) * ${w.stride[0]} - ${w.padding[0]} + (Math.floor(${p}q / ${kw}) % ${kh}) * ${w.dilation[0]};`,
    `const ${p}x = (${p}m % ${R1}) * ${w.stride[1]} - ${w.padding[1]} + (${p}q % ${kw}) * ${w.dilation[1]};`,
    `const ${p}n = Math.floor(${p}m / ${R0 * R1});`,
    `const ${v} = ${p}y >= 0 && ${p}y < ${w.src[2]} && ${p}x >= 0 && ${p}x < ${w.src[3]} ? ${src}[${image(`${p}n`)} + Math.floor(${p}q / ${kh * kw}) * ${s1} + ${p}y * ${s2} + ${p}x * ${s3}] : ${w.fill === -Infinity ? '-Infinity' : String(w.fill)};`,
  ];
}

const store = (dtype: string, v: string) => (dtype === 'bool' ? `(${v} !== 0 ? 1 : 0)` : v);
