// One GPUComputePipeline per distinct (WGSL text, entry point), never rebuilt.
//
// Layouts are explicit, derived from the shader's own declarations rather than
// layout:'auto', so that pipelines with the same binding shape share one
// GPUBindGroupLayout (and bind groups can be cached per layout). On lavapipe a
// pipeline costs 0.15-2 s of LLVM compile at its first dispatch (unless Mesa's
// disk cache has it), which is why the compile count is worth watching.

export type StorageAccess = 'read' | 'read_write';

export interface PipelineInfo {
  readonly id: number;
  readonly label: string;
  /** access of bindings 0..n-1 of group 0, all storage buffers */
  readonly storage: readonly StorageAccess[];
  /** whether binding n is a uniform buffer for the params */
  readonly hasParams: boolean;
  /** uniform params bindings n..n+uniforms-1 (several when independent kernels share one dispatch) */
  readonly uniforms: number;
  /** invocations per workgroup (product of @workgroup_size; 64 if not literal) */
  readonly workgroupInvocations: number;
  readonly layout: GPUBindGroupLayout;
  /** set by the context on the first dispatch (where lavapipe compiles) */
  dispatched: boolean;
}

export interface PipelineRequest {
  wgsl: string;
  label: string;
  entryPoint?: string;
}

const DECL = /((?:@\s*\w+\s*\(\s*\d+\s*\)\s*)+)var\s*<\s*(storage|uniform)\s*(?:,\s*(read_write|read))?\s*>/g;

/** Reads the group-0 binding shape our kernels use: storage 0..n-1, then uniforms n.. (usually one, or none). */
export function parseBindings(wgsl: string, label: string): { storage: StorageAccess[]; hasParams: boolean; uniforms: number } {
  const found: { binding: number; kind: string; access: StorageAccess }[] = [];
  for (const m of wgsl.matchAll(DECL)) {
    const group = /@\s*group\s*\(\s*(\d+)/.exec(m[1]!);
    const binding = /@\s*binding\s*\(\s*(\d+)/.exec(m[1]!);
    if (!group || !binding) continue;
    if (group[1] !== '0') throw new Error(`${label}: only @group(0) is supported`);
    found.push({ binding: +binding[1]!, kind: m[2]!, access: (m[3] as StorageAccess | undefined) ?? 'read' });
  }
  found.sort((a, b) => a.binding - b.binding);
  found.forEach((b, i) => {
    if (b.binding !== i) throw new Error(`${label}: bindings must be numbered 0..n-1 without gaps`);
    if (b.kind === 'storage' && found.slice(0, i).some((x) => x.kind === 'uniform')) throw new Error(`${label}: the uniform params must be the last bindings`);
  });
  const uniforms = found.filter((b) => b.kind === 'uniform').length;
  return { storage: found.filter((b) => b.kind === 'storage').map((b) => b.access), hasParams: uniforms > 0, uniforms };
}

function workgroupInvocations(wgsl: string): number {
  const m = /@\s*workgroup_size\s*\(([^)]*)\)/.exec(wgsl);
  const dims = m?.[1]!.split(',').map((s) => Number.parseInt(s.trim(), 10)) ?? [];
  return dims.length && dims.every((d) => d > 0) ? dims.reduce((a, b) => a * b, 1) : 64;
}

export class PipelineCache {
  /** pipelines created by this cache, ever */
  compiles = 0;
  private byKey = new Map<string, GPUComputePipeline>();
  private infos = new WeakMap<GPUComputePipeline, PipelineInfo>();
  private layouts = new Map<string, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private pending = new Map<string, Promise<GPUComputePipeline>>();
  private nextId = 1;

  constructor(
    private readonly device: GPUDevice,
    /** called once per pipeline creation (the context counts them) */
    private readonly onCompile: () => void = () => {},
    /** receives shader/pipeline creation errors, labelled, to be thrown at the next flush */
    private readonly onError: (e: Error) => void = (e) => {
      throw e;
    },
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  info(pipeline: GPUComputePipeline): PipelineInfo {
    const info = this.infos.get(pipeline);
    if (!info) throw new Error('pipeline was not created by this PipelineCache');
    return info;
  }

  getPipeline(wgsl: string, label: string, entryPoint = 'main'): GPUComputePipeline {
    const key = `${entryPoint}\0${wgsl}`;
    const hit = this.byKey.get(key);
    if (hit) return hit;
    // Invalid WGSL is reported asynchronously; an error scope ties the message
    // to this label and source instead of an anonymous uncaptured error.
    this.device.pushErrorScope('validation');
    try {
      const { desc, finish } = this.describe(wgsl, label, entryPoint);
      return this.insert(key, this.device.createComputePipeline(desc), finish);
    } finally {
      void this.device.popErrorScope().then((err) => {
        if (err) this.onError(compileError(label, wgsl, err.message));
      });
    }
  }

  /** Creates many pipelines concurrently (createComputePipelineAsync); already cached ones are free. */
  prepare(requests: readonly (PipelineRequest | string)[]): Promise<GPUComputePipeline[]> {
    return Promise.all(
      requests.map((r, i) => {
        const { wgsl, label, entryPoint = 'main' } = typeof r === 'string' ? { wgsl: r, label: `prepared#${i}` } : r;
        const key = `${entryPoint}\0${wgsl}`;
        const hit = this.byKey.get(key);
        if (hit) return hit;
        let p = this.pending.get(key);
        if (!p) {
          const { desc, finish } = this.describe(wgsl, label, entryPoint);
          p = this.device.createComputePipelineAsync(desc).then(
            (pipeline) => {
              this.pending.delete(key);
              return this.byKey.get(key) ?? this.insert(key, pipeline, finish); // a sync getPipeline may have won the race
            },
            (e: unknown) => {
              this.pending.delete(key);
              throw compileError(label, wgsl, e instanceof Error ? e.message : String(e));
            },
          );
          this.pending.set(key, p);
        }
        return p;
      }),
    );
  }

  private describe(wgsl: string, label: string, entryPoint: string) {
    const { storage, hasParams, uniforms } = parseBindings(wgsl, label);
    const shape = storage.map((a) => (a === 'read' ? 'r' : 'w')).join('') + 'u'.repeat(uniforms);
    let layout = this.layouts.get(shape);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = storage.map((a, binding) => ({
        binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: a === 'read' ? 'read-only-storage' : 'storage' },
      }));
      // A plain uniform binding, not hasDynamicOffset: measured on lavapipe,
      // dynamic offsets made each dispatch ~3x slower on the GPU side.
      for (let u = 0; u < uniforms; u++) entries.push({ binding: storage.length + u, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
      const bgl = this.device.createBindGroupLayout({ label: `layout:${shape}`, entries });
      layout = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
      this.layouts.set(shape, layout);
    }
    const module = this.device.createShaderModule({ code: wgsl, label });
    const desc: GPUComputePipelineDescriptor = { label, layout: layout.pl, compute: { module, entryPoint } };
    const info: Omit<PipelineInfo, 'id'> = {
      label,
      storage,
      hasParams,
      uniforms,
      workgroupInvocations: workgroupInvocations(wgsl),
      layout: layout.bgl,
      dispatched: false,
    };
    return { desc, finish: info };
  }

  private insert(key: string, pipeline: GPUComputePipeline, info: Omit<PipelineInfo, 'id'>): GPUComputePipeline {
    this.byKey.set(key, pipeline);
    this.infos.set(pipeline, { id: this.nextId++, ...info });
    this.compiles++;
    this.onCompile();
    return pipeline;
  }
}

function compileError(label: string, wgsl: string, message: string): Error {
  const numbered = wgsl
    .split('\n')
    .map((l, i) => `${String(i + 1).padStart(4)}| ${l}`)
    .join('\n');
  return new Error(`WGSL pipeline "${label}" failed to compile:\n${message}\n--- ${label} ---\n${numbered}`);
}
