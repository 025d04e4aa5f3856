/**
 * The inspector: the traced IR (forward, backward and update nodes of the compiled
 * step), the optimised IR, and the fused kernels with their WGSL. Click a node to see
 * the kernel that computes it; click a kernel to see its nodes and module paths. It
 * reads only what `compiled.graphs()` returns: each kernel's `nodes` are the IR ids it fuses,
 * its `source` the generated WGSL (webgpu) or JavaScript (cpu).
 */
import type * as torch from 'wgtorch';

type IRNodeInfo = ReturnType<torch.CompiledGraph['irNodes']>[number];

const el = <K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

export class Inspector {
  private graph: torch.CompiledGraph | null = null;
  private kernelsOf = new Map<string, number[]>(); // `${part}:${id}` -> kernel indices
  private irView: 'traced' | 'optimised' = 'traced';
  private selectedKernel: number | null = null;
  private selectedNode: string | null = null;

  constructor(private readonly root: HTMLElement) {
    this.empty();
  }

  private empty(): void {
    this.root.replaceChildren(el('p', 'hint', 'Train in compiled mode to inspect the traced IR and the fused WGSL kernels.'));
  }

  show(g: torch.CompiledGraph): void {
    this.graph = g;
    this.kernelsOf.clear();
    g.kernels.forEach((k, i) => {
      for (const id of k.nodes) {
        const key = `${k.part}:${id}`;
        this.kernelsOf.set(key, [...(this.kernelsOf.get(key) ?? []), i]);
      }
    });
    this.selectedKernel ??= 0;
    this.render();
  }

  /** The kernel indices that compute a node of the traced graph (ids survive the passes). */
  private kernelsForTraced(n: IRNodeInfo): number[] {
    const part = this.graph!.backwardIR && n.phase !== 'forward' ? 'backward' : 'forward';
    return this.kernelsOf.get(`${part}:${n.id}`) ?? [];
  }

  private render(): void {
    const g = this.graph!;
    const s = g.stats;
    const head = el('div', 'inspector-head');
    head.append(
      el('span', 'stat', `${s.fusedKernels} fused kernels in ${s.dispatches} dispatches per step`),
      el('span', 'stat', `${g.kernels.length} listed (a pack is one dispatch)`),
      el('span', 'stat', `graph compiled in ${s.compileMs.toFixed(0)} ms`),
    );
    const cols = el('div', 'inspector-cols');
    cols.append(this.renderIR(), this.renderKernels());
    this.root.replaceChildren(head, cols);
  }

  private renderIR(): HTMLElement {
    const g = this.graph!;
    const box = el('section', 'ir');
    const tabs = el('div', 'subtabs');
    for (const v of ['traced', 'optimised'] as const) {
      const b = el('button', v === this.irView ? 'on' : '', v === 'traced' ? 'Traced IR' : 'Optimised IR');
      b.dataset.irView = v;
      b.onclick = () => {
        this.irView = v;
        this.render();
      };
      tabs.append(b);
    }
    box.append(tabs);
    const sel = this.selectedKernel !== null ? g.kernels[this.selectedKernel] : null;
    const lists: { title: string; part: 'forward' | 'backward'; nodes: IRNodeInfo[]; traced: boolean }[] = [];
    if (this.irView === 'traced') {
      const traced = g.irNodes('traced').filter((n) => n.op !== 'input' && n.op !== 'scalar');
      for (const phase of ['forward', 'backward', 'update'] as const) {
        const nodes = traced.filter((n) => n.phase === phase);
        if (nodes.length) lists.push({ title: phase, part: phase === 'forward' || !g.backwardIR ? 'forward' : 'backward', nodes, traced: true });
      }
    } else {
      for (const part of ['forward', 'backward'] as const) {
        const nodes = g.irNodes(part).filter((n) => n.op !== 'input' && n.op !== 'scalar');
        if (nodes.length) lists.push({ title: `${part} (optimised)`, part, nodes, traced: false });
      }
    }
    for (const l of lists) {
      box.append(el('h4', '', `${l.title} · ${l.nodes.length} nodes`));
      const pre = el('div', 'ir-lines');
      for (const n of l.nodes) {
        const ks = l.traced ? this.kernelsForTraced(n) : (this.kernelsOf.get(`${l.part}:${n.id}`) ?? []);
        const line = el('div', 'node');
        line.dataset.node = String(n.id);
        line.dataset.part = l.part;
        const key = `${l.part}:${n.id}`;
        if (!ks.length) line.classList.add('unfused');
        if (sel && sel.part === l.part && sel.nodes.includes(n.id)) line.classList.add('in-kernel');
        if (this.selectedNode === key) line.classList.add('selected');
        line.append(el('span', 'text', n.text), el('span', 'scope', n.scope ?? ''));
        line.append(el('span', 'badge', ks.length ? ks.map((i) => g.kernels[i]!.name).join(', ') : 'view / folded'));
        line.title = ks.length ? `computed by ${ks.map((i) => g.kernels[i]!.name).join(', ')}` : 'no kernel of its own: read as a view by its consumer, or rewritten by the passes';
        line.onclick = () => {
          this.selectedNode = key;
          if (ks.length) this.selectedKernel = ks[0]!;
          this.render();
          this.root.querySelector('.kernel.selected')?.scrollIntoView({ block: 'nearest' });
        };
        pre.append(line);
      }
      box.append(pre);
    }
    return box;
  }

  private renderKernels(): HTMLElement {
    const g = this.graph!;
    const box = el('section', 'kernels');
    box.append(el('h4', '', `kernels · ${g.kernels.length}`));
    const list = el('div', 'kernel-list');
    const optimised = new Map<string, IRNodeInfo>();
    for (const part of ['forward', 'backward'] as const) for (const n of g.irNodes(part)) optimised.set(`${part}:${n.id}`, n);
    g.kernels.forEach((k, i) => {
      const item = el('div', 'kernel');
      item.dataset.kernel = k.name;
      if (i === this.selectedKernel) item.classList.add('selected');
      const title = el('div', 'kernel-title');
      title.append(el('b', '', k.name), el('span', 'part', k.part), ...(k.parts ? [el('span', 'pack', `pack of ${k.parts.length}: ${k.parts.join(', ')}`)] : []));
      const chips = el('div', 'chips');
      for (const id of k.nodes) {
        const n = optimised.get(`${k.part}:${id}`);
        const chip = el('span', 'chip', `%${id} ${n?.op ?? ''}`);
        chip.dataset.node = String(id);
        chip.onclick = (e) => {
          e.stopPropagation();
          this.selectedKernel = i;
          this.selectedNode = `${k.part}:${id}`;
          this.render();
          this.root.querySelector('.ir .node.selected')?.scrollIntoView({ block: 'nearest' });
        };
        chips.append(chip);
      }
      item.append(title, chips);
      if (k.scopes.length) item.append(el('div', 'scopes', `from ${k.scopes.join(', ')}`));
      item.onclick = () => {
        this.selectedKernel = i;
        this.selectedNode = null;
        this.render();
        this.root.querySelector('.ir .node.in-kernel')?.scrollIntoView({ block: 'nearest' });
      };
      list.append(item);
    });
    box.append(list);
    const sel = this.selectedKernel !== null ? g.kernels[this.selectedKernel] : null;
    if (sel) {
      // WGSL on webgpu; on the cpu target the kernel is JavaScript (calling Wasm for matmuls)
      box.append(el('h4', '', `${sel.name}.${sel.language === 'wgsl' ? 'wgsl' : 'js'}`));
      box.append(el('pre', `source ${sel.language}`, sel.source));
    }
    return box;
  }
}
