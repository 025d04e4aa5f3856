/** Prints a graph as stable, diffable text, one node a line, like a jaxpr. */
import { shortDType } from './dtype.ts';
import type { AttrValue } from './registry.ts';
import type { Graph, GraphOutput, IRNode } from './graph.ts';

export const valueName = (id: number) => `%${id}`;

export function typeOf(n: { shape: readonly number[]; dtype: IRNode['dtype'] }): string {
  return `${shortDType(n.dtype)}[${n.shape.join(',')}]`;
}

function attrText(v: AttrValue): string {
  if (Array.isArray(v)) return `[${v.join(',')}]`;
  return String(v);
}

export function nodeLine(n: IRNode, name: (id: number) => string = valueName): string {
  const lhs = `${name(n.id)}:${typeOf(n)}`;
  let rhs: string;
  if (n.op === 'input') rhs = `input ${n.name ?? ''}`.trimEnd();
  else if (n.op === 'scalar') rhs = `scalar ${n.attrs.value}`;
  else {
    const attrs = Object.entries(n.attrs)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `${k}=${attrText(v)}`);
    rhs = [n.op, ...n.inputs.map(name), ...attrs].join(' ');
  }
  const line = `${lhs} = ${rhs}`;
  return n.scope ? `${line.padEnd(56)} # ${n.scope}` : line;
}

/** The whole graph; `only` restricts the body to some nodes (inputs they use are listed as parameters). */
export function printGraph(
  g: Graph,
  opts: { title?: string; only?: (n: IRNode) => boolean; outputs?: (o: GraphOutput) => boolean } = {},
): string {
  const only = opts.only ?? (() => true);
  const body = g.nodes.filter((n) => only(n) && n.op !== 'input');
  const defined = new Set(body.map((n) => n.id));
  const params = new Map<number, IRNode>();
  for (const n of g.nodes) if (n.op === 'input' && only(n)) params.set(n.id, n);
  for (const n of body) for (const i of n.inputs) if (!defined.has(i) && !params.has(i)) params.set(i, g.node(i));
  const outs = g.outputs.filter((o) => (opts.outputs ? opts.outputs(o) : defined.has(o.id) || params.has(o.id)));
  const lines = [`${opts.title ?? 'graph'}(`];
  for (const p of [...params.values()].sort((a, b) => a.id - b.id)) {
    const what = p.op === 'input' ? (p.name ?? 'input') : `saved from ${p.phase}: ${p.op}`;
    lines.push(`    ${valueName(p.id)}:${typeOf(p)}  # ${what}`);
  }
  lines.push(') {');
  for (const n of body) lines.push(`  ${nodeLine(n)}`);
  lines.push(`  return ${outs.map((o) => `${valueName(o.id)} (${o.role}${o.label ? ` ${o.label}` : ''})`).join(', ')}`);
  lines.push('}');
  return lines.join('\n');
}
