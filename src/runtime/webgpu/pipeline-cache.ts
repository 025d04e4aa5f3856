// One GPUComputePipeline per distinct (WGSL text, entry point), never rebuilt.
//
// Layouts are explicit, as the generator that wrote the shader declares them
// (WgslLayout: storage accesses, uniforms, workgroup size) rather than
// layout:'auto', so that pipelines with the same binding shape share one
// GPUBindGroupLayout (and bind groups can be cached per layout). On lavapipe a
// pipeline costs 0.15-2 s of LLVM compile at its first dispatch (unless Mesa's
// disk cache has it), which is why the compile count is worth watching.

import type { StorageAccess } from '../../codegen-wgsl/namespace.ts';

export type { StorageAccess };

/** The binding shape of a shader: group-0 storage buffers 0..n-1, then `uniforms` uniform buffers; its workgroup size. */
export interface ShaderLayout {
  storage: readonly StorageAccess[];
  uniforms: number;
  workgroupSize: readonly [number, number, number];
}

export interface PipelineInfo {
  readonly id: number;
  readonly label: string;
  /** access of bindings 0..n-1 of group 0, all storage buffers */
  readonly storage: readonly StorageAccess[];
  /** whether binding n is a uniform buffer for the params */
  readonly hasParams: boolean;
  /** uniform params bindings n..n+uniforms-1 (several when independent kernels share one dispatch) */
  readonly uniforms: number;
  /** invocations per workgroup (product of the workgroup size) */
  readonly workgroupInvocations: number;
  readonly layout: GPUBindGroupLayout;
  /** set by the context on the first dispatch (where lavapipe compiles) */
  dispatched: boolean;
}

export interface PipelineRequest {
  wgsl: string;
  label: string;
  layout: ShaderLayout;
  entryPoint?: string;
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
    /** the storage buffers one stage may bind (the context's limit, which may be lower than the device's) */
    private readonly maxStorage: () => number = () => device.limits.maxStorageBuffersPerShaderStage,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  info(pipeline: GPUComputePipeline): PipelineInfo {
    const info = this.infos.get(pipeline);
    if (!info) throw new Error('pipeline was not created by this PipelineCache');
    return info;
  }

  getPipeline(wgsl: string, label: string, layout: ShaderLayout, entryPoint = 'main'): GPUComputePipeline {
    const key = `${entryPoint}\0${layoutKey(layout)}\0${wgsl}`;
    const hit = this.byKey.get(key);
    if (hit) return hit;
    // Invalid WGSL is reported asynchronously; an error scope ties the message
    // to this label and source instead of an anonymous uncaptured error.
    this.device.pushErrorScope('validation');
    try {
      const { desc, finish } = this.describe(wgsl, label, layout, entryPoint);
      return this.insert(key, this.device.createComputePipeline(desc), finish);
    } finally {
      void this.device.popErrorScope().then((err) => {
        if (err) this.onError(compileError(label, wgsl, err.message));
      });
    }
  }

  /** Creates many pipelines concurrently (createComputePipelineAsync); already cached ones are free. */
  prepare(requests: readonly PipelineRequest[]): Promise<GPUComputePipeline[]> {
    return Promise.all(
      requests.map((r) => {
        const { wgsl, label, layout, entryPoint = 'main' } = r;
        const key = `${entryPoint}\0${layoutKey(layout)}\0${wgsl}`;
        const hit = this.byKey.get(key);
        if (hit) return hit;
        let p = this.pending.get(key);
        if (!p) {
          const { desc, finish } = this.describe(wgsl, label, layout, entryPoint);
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

  private describe(wgsl: string, label: string, declared: ShaderLayout, entryPoint: string) {
    const max = this.maxStorage();
    if (declared.storage.length > max) {
      throw new Error(`WGSL pipeline "${label}" binds ${declared.storage.length} storage buffers, over the device's maxStorageBuffersPerShaderStage of ${max}`);
    }
    const storage = [...declared.storage];
    const uniforms = declared.uniforms;
    const hasParams = uniforms > 0;
    const shape = layoutKey(declared);
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
      workgroupInvocations: declared.workgroupSize.reduce((a, b) => a * b, 1),
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

const layoutKey = (l: ShaderLayout) => l.storage.map((a) => (a === 'read' ? 'r' : 'w')).join('') + 'u'.repeat(l.uniforms);

function compileError(label: string, wgsl: string, message: string): Error {
  const numbered = wgsl
    .split('\n')
    .map((l, i) => `${String(i + 1).padStart(4)}| ${l}`)
    .join('\n');
  return new Error(`WGSL pipeline "${label}" failed to compile:\n${message}\n--- ${label} ---\n${numbered}`);
}
