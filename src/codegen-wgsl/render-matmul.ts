/**
 * A matmul kernel of the kernel IR as WGSL: the register-blocked template (matmul.ts) with
 * - a prologue function per operand (applied to every loaded element),
 * - an epilogue on each output element (it may write several values), over 4 columns at
 *   once with vec4 loads and stores in the vec4 variants,
 * - reductions of op(A) or op(B) along K (any value reduction of src/ir/reductions.ts)
 *   and their consumers, once per row or column.
 */
import { foldExpr, preferExpr, REDUCTIONS } from '../ir/reductions.ts';
import { WGSL_PRELUDE, wgslF32, wgslLang } from '../ir/scalar-lang.ts';
import type { MatmulBody, MatmulInput } from '../passes/kernel-ir.ts';
import { windowLoadWGSL, windowWordValues } from '../ir/window.ts';
import { renderNodes } from './expr.ts';
import { storeAs, wgslType } from './kernel-spec.ts';
import { matmulVariantFor, matmulWGSL, type LineReduction, type MatmulVariant, type MatmulVariantName } from './matmul.ts';
import { standalone, type Namespace, type WgslLayout } from './namespace.ts';

export interface RenderedMatmul {
  code: string;
  layout: WgslLayout;
  variant: MatmulVariant;
}

export function matmulKernelWGSL(b: MatmulBody, requested: MatmulVariant | MatmulVariantName | undefined, nsIn?: Namespace): RenderedMatmul {
  const { M, N } = b;
  const variant = matmulVariantFor(M, N, b.K, b.transA, requested);
  if (b.batch.count > 1 && b.reductions.length) throw new Error('internal compiler error: operand reductions of a batched matmul');
  const storage = 3 + b.reads.length + (b.outputs.length - 1) + b.reductions.reduce((t, r) => t + r.outputs.length, 0);
  const ns = nsIn ?? standalone(storage);
  const n = (s: string) => ns.prefix + s;
  const sc = (s: number) => `bitcast<f32>(${n('p')}.x[${Math.floor(s / 4)}][${s % 4}])`;
  const readName = (r: number) => n(`ein${r}`);
  const outName = (j: number) => (j === 0 ? n('C') : n(`eout${j}`));
  const redOutName = (q: number, j: number) => n(`red${q}out${j}`);
  const input = (i: number): MatmulInput => b.inputs[i]!;

  // ---- prologues: x is the loaded element, inputs are one-element tensors
  const prologue = (which: 'A' | 'B') => {
    const nodes = which === 'A' ? b.prologueA : b.prologueB;
    if (!nodes.length) return null;
    const names = {
      input: (i: number) => `f32(${readName((input(i) as { read: number }).read)}[0])`,
      scalar: sc,
      element: 'x',
      prefix: `pro${which}`,
    };
    const body = renderNodes(nodes, names, '  ');
    return `fn ${n(`prologue${which}`)}(x: f32) -> f32 {\n${body.join('\n')}\n  return pro${which}${nodes.length - 1};\n}`;
  };
  const proA = prologue('A');
  const proB = prologue('B');

  // ---- operands read through a convolution's index map (its sizes baked in: one pipeline per conv geometry)
  const windowFn = (which: 'A' | 'B') => {
    const w = which === 'A' ? b.windowA : b.windowB;
    if (!w) return null;
    const vals = windowWordValues(w);
    return windowLoadWGSL(n(`window${which}`), n(which), (k) => `${vals[k]}u`);
  };
  const winA = windowFn('A');
  const winB = windowFn('B');

  // ---- epilogue
  const fusedEpilogue = b.epilogue.length > 0 || b.outputs[0]!.ref.kind !== 'acc';
  const wide = variant.vec4 && fusedEpilogue;
  // read buffers loaded as vec4: every epilogue use contiguous along the row, in groups of 4, and no other use
  const vecRead = b.reads.map((_, r) => {
    const uses = b.inputs.filter((x) => x.at !== 'alias' && x.read === r);
    return wide && uses.length > 0 && uses.every((x) => x.at === 'rowcol' && x.strides[1] === 1 && x.strides[0] % 4 === 0);
  });
  const elem = (r: number, idx: string) => (vecRead[r] ? `${readName(r)}[(${idx}) / 4u][(${idx}) % 4u]` : `${readName(r)}[${idx}]`);

  let epiFn: string;
  if (!wide) {
    // one output element (the tiled and scalar variants)
    const loadAt = (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        // in place: the old value is read where the new one is about to be written
        const out = outName(x.output);
        return x.output === 0 && variant.vec4 ? `${out}[(row * ${N}u + col) / 4u][(row * ${N}u + col) % 4u]` : `f32(${out}[row * ${N}u + col])`;
      }
      if (x.at !== 'rowcol') throw new Error(`internal compiler error: a matmul epilogue reads a ${x.at} input`);
      return `f32(${elem(x.read, `row * ${x.strides[0]}u + col * ${x.strides[1]}u`)})`;
    };
    const epiBody = renderNodes(b.epilogue, { input: loadAt, scalar: sc, acc: 'acc', prefix: 'e' }, '  ');
    const stores = b.outputs.map((o, j) => {
      const v = storeAs(o.dtype, o.ref.kind === 'acc' ? 'acc' : `e${(o.ref as { index: number }).index}`);
      if (j === 0 && variant.vec4) return `  ${outName(0)}[(row * ${N}u + col) / 4u][(row * ${N}u + col) % 4u] = ${v};`;
      return `  ${outName(j)}[row * ${N}u + col] = ${v};`;
    });
    epiFn = `fn ${n('epilogue')}(acc: f32, row: u32, col: u32) {\n${epiBody.join('\n')}\n${stores.join('\n')}\n}`;
  } else {
    // vec4 epilogue: each operand loaded once as a vec4, the formulas per component, vec4 stores
    const loads = new Map<string, string>();
    const load = (key: string, expr: string) => {
      if (!loads.has(key)) loads.set(key, `  let v${loads.size} = ${expr};`);
      return `v${[...loads.keys()].indexOf(key)}`;
    };
    const at = `(row * ${N}u + col) / 4u`;
    const input4 = (q: number) => (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        const out = outName(x.output);
        return `f32(${load(`out:${out}`, `${out}[${at}]`)}[${q}])`;
      }
      if (x.at !== 'rowcol') throw new Error(`internal compiler error: a matmul epilogue reads a ${x.at} input`);
      const [sr, scol] = x.strides;
      if (vecRead[x.read]) return `f32(${load(`in:${x.read}:${sr}`, `${readName(x.read)}[(row * ${sr}u + col) / 4u]`)}[${q}])`;
      return `f32(${elem(x.read, `row * ${sr}u + (col + ${q}u) * ${scol}u`)})`;
    };
    const comp = 'xyzw';
    const bodies = [0, 1, 2, 3].map((q) => renderNodes(b.epilogue, { input: input4(q), scalar: sc, acc: `acc.${comp[q]}`, prefix: `e${comp[q]}` }, '  '));
    const stores = b.outputs.map((o, j) => {
      const parts = [0, 1, 2, 3].map((q) => storeAs(o.dtype, o.ref.kind === 'acc' ? `acc.${comp[q]}` : `e${comp[q]}${(o.ref as { index: number }).index}`));
      return `  ${outName(j)}[${at}] = vec4<${wgslType(o.dtype)}>(${parts.join(', ')});`;
    });
    epiFn = `fn ${n('epilogue4')}(acc: vec4<f32>, row: u32, col: u32) {\n${[...loads.values(), ...bodies.flat(), ...stores].join('\n')}\n}`;
  }

  // ---- once per row of op(A) / column of op(B): the operand reductions and what consumes them
  const lineFns: string[] = [];
  const lines: Partial<Record<'A' | 'B', LineReduction>> = {};
  b.reductions.forEach((r, q) => {
    const red = REDUCTIONS[r.combine];
    if (red.kind === 'select' && red.index) throw new Error(`internal compiler error: ${r.combine} is not a value a matmul can reduce its operand to`);
    const fn = n(`line${q}`);
    const loadLine = (i: number) => {
      const x = input(i);
      if (x.at === 'alias') {
        if (x.region !== q) throw new Error(`internal compiler error: operand reduction ${q} reads the old value of another region's output`);
        return `f32(${redOutName(q, x.output)}[i])`;
      }
      if (x.at !== 'line') throw new Error(`internal compiler error: an operand reduction's epilogue reads a ${x.at} input`);
      return `f32(${elem(x.read, `i * ${x.strides[0]}u`)})`;
    };
    const body = renderNodes(r.epilogue, { input: loadLine, scalar: sc, acc: 'v', prefix: 'r' }, '  ');
    const stores = r.outputs.map((o, j) => `  ${redOutName(q, j)}[i] = ${storeAs(o.dtype, o.ref.kind === 'acc' ? 'v' : `r${(o.ref as { index: number }).index}`)};`);
    lineFns.push(`fn ${fn}(v: f32, i: u32) {\n${[...body, ...stores].join('\n')}\n}`);
    let combine: LineReduction['combine'];
    if (red.kind === 'fold') combine = (acc, v) => foldExpr(red, acc, v);
    else {
      lineFns.push(`fn ${fn}Prefer(v: f32, best: f32) -> bool { return ${preferExpr(red, wgslLang, 'v', 'best')} != 0.0; }`);
      combine = (acc, v) => `select(${acc}, ${v}, ${fn}Prefer(${v}, ${acc}))`;
    }
    lines[r.operand] = { identity: wgslF32(red.identity), combine, call: (value, line) => `${fn}(${value}, ${line});` };
  });

  const vecType = (vec4: boolean, dtype: Parameters<typeof wgslType>[0]) => (vec4 ? `array<vec4<${wgslType(dtype)}>>` : `array<${wgslType(dtype)}>`);
  const extraBindings = [
    ...b.reads.map((r, j) => ({ name: readName(j), type: vecType(vecRead[j]!, r.dtype), access: 'read' as const })),
    ...b.outputs.slice(1).map((o, j) => ({ name: outName(j + 1), type: vecType(wide, o.dtype), access: 'read_write' as const })),
    ...b.reductions.flatMap((r, q) => r.outputs.map((o, j) => ({ name: redOutName(q, j), type: `array<${wgslType(o.dtype)}>`, access: 'read_write' as const }))),
  ];
  const extraCode = [ns.entry === 'compute' ? WGSL_PRELUDE : null, winA, winB, proA, proB, fusedEpilogue ? epiFn : null, ...lineFns].filter(Boolean).join('\n');
  const kernel = matmulWGSL({
    transA: b.transA,
    transB: b.transB,
    variant,
    loadA: winA ? (row, k) => `${n('windowA')}(${row}, ${k}, offA)` : undefined,
    loadB: winB ? (k, col) => `${n('windowB')}(${k}, ${col}, offB)` : undefined,
    prologueA: proA ? (x) => `${n('prologueA')}(${x})` : undefined,
    prologueB: proB ? (x) => `${n('prologueB')}(${x})` : undefined,
    epilogueCall: fusedEpilogue && !wide ? (acc: string, row: string, col: string) => `${n('epilogue')}(${acc}, ${row}, ${col});` : undefined,
    epilogueCall4: wide ? (acc: string, row: string, col: string) => `${n('epilogue4')}(${acc}, ${row}, ${col});` : undefined,
    reduceA: lines.A,
    reduceB: lines.B,
    extraBindings,
    extraCode: extraCode || undefined,
    extraParamWords: b.scalars,
    ns,
  });
  return { code: kernel.code, layout: kernel.layout, variant };
}

/** The params uniform: M, N, K, the batch strides, then the scalars' f32 bits. */
export function matmulKernelParams(b: MatmulBody, values: readonly number[]): Uint32Array {
  const words = new Uint32Array(8 + Math.max(1, Math.ceil(values.length / 4)) * 4);
  // word 6 is the template's `zero` (matmul.ts rolledBound)
  words.set([b.M, b.N, b.K, b.batch.strideA, b.batch.strideB, b.batch.strideC, 0, 0]);
  words.set(new Uint32Array(new Float32Array(values).buffer), 8);
  return words;
}
