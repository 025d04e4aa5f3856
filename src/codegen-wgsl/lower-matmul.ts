/**
 * A fused matmul: the register-blocked template with
 * - a prologue per operand (recomputed elementwise producers, applied to every loaded element),
 * - an epilogue on each output element (bias, relu/clamp, masks; it may write several values),
 * - optionally the column sums of its transposed A operand (a bias gradient) as a second output.
 * Epilogue operands are read at (row, col) through strides fixed at compile time.
 */
import type { IRNode } from '../ir/graph.ts';
import { numel, stridesOf } from '../ir/shape.ts';
import { WGSL_PRELUDE } from '../ir/scalar-lang.ts';
import type { Kernel } from '../passes/fusion.ts';
import { broadcastView, matmulLayout } from '../passes/views.ts';
import { renderNodes } from './expr.ts';
import type { ExprNode, Ref } from './kernel-spec.ts';
import { storeAs, wgslType } from './kernel-spec.ts';
import type { LoweredKernel, LowerContext } from './lower.ts';
import { matmulDispatch, matmulParams, matmulVariantFor, matmulWGSL } from './matmul.ts';

export function lowerMatmul(cx: LowerContext, k: Extract<Kernel, { kind: 'matmul' }>, index: number): LoweredKernel {
  const g = cx.g;
  const mm = g.node(k.node);
  const [M, N] = mm.shape;
  const K = g.node(mm.inputs[0]).shape[1];
  const scalars: number[] = [];
  const scalarRef = (id: number) => {
    let s = scalars.indexOf(id);
    if (s < 0) s = scalars.push(id) - 1;
    return s;
  };
  const extraReads: { id: number; name: string }[] = [];
  const readBinding = (id: number) => {
    let r = extraReads.find((e) => e.id === id);
    if (!r) extraReads.push((r = { id, name: `ein${extraReads.length}` }));
    return r.name;
  };
  const sc = (s: number) => `bitcast<f32>(p.x[${Math.floor(s / 4)}][${s % 4}])`;

  // ---- operands and prologues
  const operand = (which: 'A' | 'B', id: number, prologue: number[]) => {
    const v = cx.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
    const layout = matmulLayout(v, g.node(v.base).shape);
    if (!layout) throw new Error(`matmul operand %${id} is neither plain nor transposed`);
    if (!prologue.length) return { base: v.base, trans: layout === 'transposed', fn: null as string | null };
    // the prologue reads one tensor shaped like its result, plus scalars and one-element tensors
    const inside = new Map<number, number>();
    let src = -1;
    const refOf = (i: number): Ref => {
      if (inside.has(i)) return { kind: 'node', index: inside.get(i)! };
      const base = cx.views.get(i)?.base ?? i;
      if (g.node(base).op === 'scalar') return { kind: 'scalar', index: scalarRef(base) };
      if (numel(g.node(base).shape) === 1) {
        const name = readBinding(base);
        return { kind: 'input', index: 1 + extraReads.findIndex((e) => e.name === name) };
      }
      src = base;
      return { kind: 'input', index: 0 };
    };
    const nodes: ExprNode[] = prologue.map((pid) => {
      const n = g.node(pid);
      const e: ExprNode = { op: n.op, args: n.inputs.map(refOf), attrs: n.attrs, origin: { ids: [pid], scope: n.scope } };
      inside.set(pid, inside.size);
      return e;
    });
    const names = {
      input: (i: number) => (i === 0 ? 'x' : `f32(${extraReads[i - 1].name}[0])`),
      scalar: sc,
      prefix: `pro${which}`,
    };
    const body = renderNodes(nodes, names, '  ');
    const fn = `fn prologue${which}(x: f32) -> f32 {\n${body.join('\n')}\n  return pro${which}${nodes.length - 1};\n}`;
    return { base: src, trans: layout === 'transposed', fn };
  };
  const A = operand('A', mm.inputs[0], k.prologueA);
  const B = operand('B', mm.inputs[1], k.prologueB);

  // ---- epilogue
  let written = [k.node, ...k.epilogue].filter((id) => cx.writes.has(id));
  // C is the template's f32 output: it holds the first float value written (the matmul itself if need be)
  const firstFloat = written.find((id) => g.node(id).dtype === 'float32');
  written = firstFloat === undefined ? [k.node, ...written] : [firstFloat, ...written.filter((id) => id !== firstFloat)];
  const outName = new Map<number, string>();
  written.forEach((id, j) => outName.set(id, j === 0 ? 'C' : `eout${j}`));
  const epiInside = new Map<number, number>();
  const epiNodes: ExprNode[] = k.epilogue.map((id) => {
    const n: IRNode = g.node(id);
    const args: Ref[] = n.inputs.map((i) => {
      if (i === k.node) return { kind: 'acc' };
      if (epiInside.has(i)) return { kind: 'node', index: epiInside.get(i)! };
      const base = cx.views.get(i)?.base ?? i;
      if (g.node(base).op === 'scalar') return { kind: 'scalar', index: scalarRef(base) };
      return { kind: 'input', index: i };
    });
    epiInside.set(id, epiInside.size);
    return { op: n.op, args, attrs: n.attrs, origin: { ids: [id], scope: n.scope } };
  });
  const problem = { transA: A.trans, transB: B.trans, M, N, K };
  const variant = matmulVariantFor(M, N, K, A.trans, cx.matmulVariant?.(problem));
  const fusedEpilogue = k.epilogue.length > 0 || written[0] !== k.node;
  // vec4 variants run the epilogue over 4 columns at once, loading and storing vec4s
  const wide = variant.vec4 && fusedEpilogue;
  const viewOf = (id: number) => cx.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
  const isOwnOutput = (base: number) => {
    const over = cx.inPlace.get(base);
    return over !== undefined && outName.has(over);
  };
  // operands read as vec4: every epilogue read of the base is contiguous along the row, in groups of 4
  const prologueReads = new Set(extraReads.map((e) => e.id));
  const rowReads = new Set(k.rowEpilogue.flatMap((id) => g.node(id).inputs.map((i) => viewOf(i).base)));
  const epiReads = new Map<number, boolean>();
  for (const n of epiNodes)
    for (const a of n.args) {
      if (a.kind !== 'input') continue;
      const v = viewOf(a.index);
      if (isOwnOutput(v.base)) continue;
      const [sr, scol] = broadcastView(v, [M, N]);
      epiReads.set(v.base, (epiReads.get(v.base) ?? true) && scol === 1 && sr % 4 === 0);
    }
  const vecBase = new Set(wide ? [...epiReads].filter(([b, ok]) => ok && !prologueReads.has(b) && !rowReads.has(b)).map(([b]) => b) : []);
  const elem = (base: number, idx: string) => {
    const name = readBinding(base);
    return vecBase.has(base) ? `${name}[(${idx}) / 4u][(${idx}) % 4u]` : `${name}[${idx}]`;
  };

  // scalar epilogue: one output element (the tiled and scalar variants)
  const loadAt = (id: number) => {
    const v = viewOf(id);
    const [sr, scol] = broadcastView(v, [M, N]);
    if (isOwnOutput(v.base)) {
      // in place: the old value is read where the new one is about to be written
      // (the stride of a size-1 dim is never used: a [1, n] or [m, 1] tensor is read in order whatever it says)
      if ((sr !== N && M !== 1) || (scol !== 1 && N !== 1)) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
      const out = outName.get(cx.inPlace.get(v.base)!)!;
      return out === 'C' && variant.vec4 ? `C[(row * ${N}u + col) / 4u][(row * ${N}u + col) % 4u]` : `f32(${out}[row * ${N}u + col])`;
    }
    return `f32(${elem(v.base, `row * ${sr}u + col * ${scol}u`)})`;
  };
  let epiFn: string;
  if (!wide) {
    const epiBody = renderNodes(epiNodes, { input: loadAt, scalar: (s) => sc(s), acc: 'acc', prefix: 'e' }, '  ');
    const valueOf = (id: number) => (id === k.node ? 'acc' : `e${epiInside.get(id)}`);
    const stores: string[] = [];
    for (const id of written) {
      const name = outName.get(id)!;
      const v = storeAs(g.node(id).dtype, valueOf(id));
      if (name === 'C' && variant.vec4) stores.push(`  C[(row * ${N}u + col) / 4u][(row * ${N}u + col) % 4u] = ${v};`);
      else stores.push(`  ${name}[row * ${N}u + col] = ${v};`);
    }
    epiFn = `fn epilogue(acc: f32, row: u32, col: u32) {\n${epiBody.join('\n')}\n${stores.join('\n')}\n}`;
  } else {
    // vec4 epilogue: each operand loaded once as a vec4, the formulas per component, vec4 stores
    const loads = new Map<string, string>();
    const load = (key: string, expr: string) => {
      if (!loads.has(key)) loads.set(key, `  let v${loads.size} = ${expr};`);
      return `v${[...loads.keys()].indexOf(key)}`;
    };
    const at = `(row * ${N}u + col) / 4u`;
    const input4 = (q: number) => (id: number) => {
      const v = viewOf(id);
      const [sr, scol] = broadcastView(v, [M, N]);
      if (isOwnOutput(v.base)) {
        // (the stride of a size-1 dim is never used: a [1, n] or [m, 1] tensor is read in order whatever it says)
      if ((sr !== N && M !== 1) || (scol !== 1 && N !== 1)) throw new Error(`internal compiler error: in-place input %${v.base} read through a view`);
        const out = outName.get(cx.inPlace.get(v.base)!)!;
        return `f32(${load(`out:${out}`, `${out}[${at}]`)}[${q}])`;
      }
      if (vecBase.has(v.base)) return `f32(${load(`in:${v.base}:${sr}`, `${readBinding(v.base)}[(row * ${sr}u + col) / 4u]`)}[${q}])`;
      return `f32(${elem(v.base, `row * ${sr}u + (col + ${q}u) * ${scol}u`)})`;
    };
    const comp = 'xyzw';
    const bodies = [0, 1, 2, 3].map((q) =>
      renderNodes(epiNodes, { input: input4(q), scalar: (s) => sc(s), acc: `acc.${comp[q]}`, prefix: `e${comp[q]}` }, '  '),
    );
    const valueOf = (id: number, q: number) => (id === k.node ? `acc.${comp[q]}` : `e${comp[q]}${epiInside.get(id)}`);
    const stores = written.map((id) => {
      const t = wgslType(g.node(id).dtype);
      const parts = [0, 1, 2, 3].map((q) => storeAs(g.node(id).dtype, valueOf(id, q)));
      return `  ${outName.get(id)}[${at}] = vec4<${t}>(${parts.join(', ')});`;
    });
    epiFn = `fn epilogue4(acc: vec4<f32>, row: u32, col: u32) {\n${[...loads.values(), ...bodies.flat(), ...stores].join('\n')}\n}`;
  }

  // ---- once per row: the column sum of op(A) and what consumes it
  const rowSum = k.rowSumA;
  const rowWritten = [...(rowSum !== null ? [rowSum] : []), ...k.rowEpilogue].filter((id) => cx.writes.has(id) || id === rowSum && !k.rowEpilogue.length);
  const rowOut = new Map(rowWritten.map((id, j) => [id, `rout${j}`] as const));
  const rowInside = new Map<number, number>();
  const isSum = (i: number) => rowSum !== null && (cx.views.get(i)?.base ?? i) === rowSum;
  const rowNodes: ExprNode[] = k.rowEpilogue.map((id) => {
    const n = g.node(id);
    const args: Ref[] = n.inputs.map((i) => {
      if (isSum(i)) return { kind: 'acc' };
      if (rowInside.has(i)) return { kind: 'node', index: rowInside.get(i)! };
      const base = cx.views.get(i)?.base ?? i;
      if (g.node(base).op === 'scalar') return { kind: 'scalar', index: scalarRef(base) };
      return { kind: 'input', index: i };
    });
    rowInside.set(id, rowInside.size);
    return { op: n.op, args, attrs: n.attrs, origin: { ids: [id], scope: n.scope } };
  });
  const loadRow = (id: number) => {
    const v = cx.views.get(id) ?? { base: id, shape: g.node(id).shape, strides: stridesOf(g.node(id).shape) };
    const over = cx.inPlace.get(v.base);
    if (over !== undefined && rowOut.has(over)) return `f32(${rowOut.get(over)}[row])`;
    const [sr] = broadcastView(v, [M]);
    return `f32(${elem(v.base, `row * ${sr}u`)})`;
  };
  const rowBody = renderNodes(rowNodes, { input: loadRow, scalar: (x) => sc(x), acc: 'rs', prefix: 'r' }, '  ');
  const rowStores = rowWritten.map((id) => `  ${rowOut.get(id)}[row] = ${storeAs(g.node(id).dtype, id === rowSum ? 'rs' : `r${rowInside.get(id)}`)};`);
  const rowFn = rowSum !== null ? `fn rowEpilogue(rs: f32, row: u32) {\n${[...rowBody, ...rowStores].join('\n')}\n}` : null;

  const extraWrites = written.slice(1).map((id) => ({ id, name: outName.get(id)! }));
  const extraBindings = [
    ...extraReads.map((e) => ({ name: e.name, type: vecType(vecBase.has(e.id), g.node(e.id).dtype), access: 'read' as const })),
    ...extraWrites.map((e) => ({ name: e.name, type: vecType(wide, g.node(e.id).dtype), access: 'read_write' as const })),
    ...rowWritten.map((id) => ({ name: rowOut.get(id)!, type: `array<${wgslType(g.node(id).dtype)}>`, access: 'read_write' as const })),
  ];
  const extraCode = [WGSL_PRELUDE, A.fn, B.fn, fusedEpilogue ? epiFn : null, rowFn].filter(Boolean).join('\n');
  const kernel = matmulWGSL({
    transA: A.trans,
    transB: B.trans,
    variant,
    prologueA: A.fn ? (x) => `prologueA(${x})` : undefined,
    prologueB: B.fn ? (x) => `prologueB(${x})` : undefined,
    epilogueCall: fusedEpilogue && !wide ? (acc: string, row: string, col: string) => `epilogue(${acc}, ${row}, ${col});` : undefined,
    epilogueCall4: wide ? (acc: string, row: string, col: string) => `epilogue4(${acc}, ${row}, ${col});` : undefined,
    rowSumCall: rowFn ? (sum: string, row: string) => `rowEpilogue(${sum}, ${row});` : undefined,
    extraBindings,
    extraCode,
    extraParamWords: scalars.length,
  });
  const nodes = [...k.prologueA, ...k.prologueB, k.node, ...k.epilogue, ...(rowSum !== null ? [rowSum] : []), ...k.rowEpilogue];
  const order = [A.base, B.base, written[0], ...extraReads.map((e) => e.id), ...extraWrites.map((e) => e.id), ...rowWritten];
  return {
    name: `k${index}_mm${A.trans ? 'T' : 'N'}${B.trans ? 'T' : 'N'}${k.epilogue.length ? '_' + k.epilogue.map((i) => g.node(i).op).join('_').slice(0, 40) : ''}${rowSum !== null ? '_colsum' : ''}${k.rowEpilogue.length ? '_rowupdate' : ''}`,
    kind: 'matmul',
    code: kernel.code,
    nodes,
    scopes: [...new Set(nodes.map((i) => g.node(i).scope).filter((s): s is string => !!s))],
    reads: [A.base, B.base, ...extraReads.map((e) => e.id)],
    writes: [written[0], ...extraWrites.map((e) => e.id), ...rowWritten],
    order,
    scalars,
    params: (values) => {
      const base = new Uint32Array(matmulParams(M, N, K));
      const words = new Uint32Array(8 + Math.max(1, Math.ceil(values.length / 4)) * 4);
      words.set(base);
      const f = new Float32Array(values);
      words.set(new Uint32Array(f.buffer), 8);
      return words;
    },
    workgroups: matmulDispatch(M, N, variant),
    matmul: { problem, variant: variant.name },
    bytes: 4 * (M * K + K * N + M * N * written.length),
    flops: 2 * M * N * K,
  };
}

const vecType = (vec4: boolean, dtype: Parameters<typeof wgslType>[0]) => (vec4 ? `array<vec4<${wgslType(dtype)}>>` : `array<${wgslType(dtype)}>`);
