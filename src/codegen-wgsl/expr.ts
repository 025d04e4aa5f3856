/** Renders kernel expression nodes with the registry's formulas, one `let` per node. */
import { getOp } from '../ir/registry.ts';
import { wgslLang, type ScalarLang } from '../ir/scalar-lang.ts';
import type { ExprNode, Ref } from '../passes/kernel-ir.ts';

export interface ExprNames {
  input(index: number): string;
  scalar(index: number): string;
  acc?: string;
  /** the loaded operand element (matmul prologues) */
  element?: string;
  /** prefix of node values, so a prologue and an epilogue do not collide */
  prefix: string;
  /** a row kernel's per-row values (default r0, r1, ...) */
  stat?(index: number): string;
  /** a row kernel's recomputed arange element */
  index?(r: Extract<Ref, { kind: 'index' }>): string;
}

export function refName(r: Ref, names: ExprNames): string {
  switch (r.kind) {
    case 'input': return names.input(r.index);
    case 'scalar': return names.scalar(r.index);
    case 'node': return `${names.prefix}${r.index}`;
    case 'acc': return names.acc ?? 'acc';
    case 'element': return names.element ?? 'x';
    case 'stat': return names.stat?.(r.index) ?? `r${r.index}`;
    case 'index':
      if (!names.index) throw new Error('internal compiler error: only a row kernel recomputes an arange from its index');
      return names.index(r);
  }
}

export function renderNodes(nodes: ExprNode[], names: ExprNames, indent: string, lang: ScalarLang = wgslLang): string[] {
  const lines: string[] = [];
  nodes.forEach((n, i) => {
    const op = getOp(n.op);
    if (!op.formula) throw new Error(`op ${n.op} has no elementwise formula`);
    // WGSL lets a compiler assume no NaN or inf, and lavapipe then folds x - x to 0: a value
    // a formula reads twice is read the second time through an identity it cannot see through
    const args = n.args.map((a) => refName(a, names));
    const expr = op.formula(lang, lang === wgslLang ? args.map((a, k) => (args.indexOf(a) < k ? `wgt_keep(${a})` : a)) : args, n.attrs);
    const note = n.origin ? ` // ${n.origin.ids.map((id) => `%${id}`).join(' ')} ${n.op}${n.origin.scope ? ` (${n.origin.scope})` : ''}` : '';
    lines.push(`${indent}let ${names.prefix}${i} = ${expr};${note}`);
  });
  return lines;
}
