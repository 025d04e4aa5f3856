/**
 * Compiling pipelines off the device's queue. Some drivers (lavapipe: LLVM) compile a
 * compute pipeline at its first dispatch, not at createComputePipeline(Async), so the
 * compile of a big fused kernel (seconds, uncached) stalls every dispatch queued behind
 * it. This compiler owns a second device on its own adapter object, creates the same
 * pipelines there and dispatches each once on one workgroup with placeholder buffers and
 * zero params (the kernels return at once): the driver compiles them on that device's
 * queue, and its disk cache (Mesa's shader cache) then serves the main device's first
 * dispatch of the same code in milliseconds. Where the driver compiles at creation, or
 * keeps no disk cache, this costs a second compile and saves nothing, so it is opt-in
 * (torch.compile's `eagerWhileCompiling`).
 */
import { PipelineCache, type PipelineRequest } from './pipeline-cache.ts';

/** Bytes of the placeholder params buffer: more than any params struct (storage placeholders hold 256, more than any element). */
const PARAMS_BYTES = 64 * 1024;

export class BackgroundCompiler {
  /** pipelines compiled on the background device, ever */
  compiled = 0;
  private device: Promise<GPUDevice> | null = null;
  private cache: PipelineCache | null = null;
  private done = new Map<string, Promise<void>>();
  /** one placeholder per storage binding: a writable buffer may not be bound twice in one pass */
  private storage: GPUBuffer[] = [];
  private uniform: GPUBuffer | null = null;

  constructor(
    private readonly gpu: GPU,
    /** the main device: the background device asks for the same limits and features */
    private readonly main: GPUDevice,
  ) {}

  private open(): Promise<GPUDevice> {
    this.device ??= (async () => {
      const adapter = await this.gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!adapter) throw new Error('background compile: no second adapter');
      const requiredLimits: Record<string, number> = {};
      for (const k in this.main.limits) {
        const v = (this.main.limits as unknown as Record<string, unknown>)[k];
        if (typeof v === 'number' && k in adapter.limits) requiredLimits[k] = Math.min(v, (adapter.limits as unknown as Record<string, number>)[k]!);
      }
      const requiredFeatures = [...this.main.features].filter((f) => adapter.features.has(f)) as GPUFeatureName[];
      const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'wgtorch-background-compile' });
      this.cache = new PipelineCache(device, () => this.compiled++);
      this.uniform = device.createBuffer({ label: 'placeholder-params', size: Math.min(PARAMS_BYTES, device.limits.maxUniformBufferBindingSize), usage: GPUBufferUsage.UNIFORM });
      return device;
    })();
    return this.device;
  }

  /**
   * Compiles every request on the background device; resolves when its queue has run them
   * all (each code once per process). A failure rejects: the main device will report the
   * same error, with its label, at its own first dispatch.
   */
  async compile(requests: readonly PipelineRequest[]): Promise<void> {
    const waits: Promise<void>[] = [];
    const todo: PipelineRequest[] = [];
    for (const r of requests) {
      const key = `${r.entryPoint ?? 'main'}\0${r.wgsl}`;
      const seen = this.done.get(key);
      if (seen) waits.push(seen);
      else todo.push(r);
    }
    if (todo.length) {
      const run = this.run(todo);
      for (const r of todo) this.done.set(`${r.entryPoint ?? 'main'}\0${r.wgsl}`, run);
      waits.push(run);
    }
    await Promise.all(waits);
  }

  private async run(requests: readonly PipelineRequest[]): Promise<void> {
    const device = await this.open();
    const cache = this.cache!;
    device.pushErrorScope('validation');
    const pipelines = await cache.prepare(requests).catch(async (e: unknown) => {
      await device.popErrorScope();
      throw e;
    });
    const enc = device.createCommandEncoder({ label: 'background-compile' });
    const pass = enc.beginComputePass();
    pipelines.forEach((p, i) => {
      const info = cache.info(p);
      while (this.storage.length < info.storage.length) this.storage.push(device.createBuffer({ label: 'placeholder-storage', size: 256, usage: GPUBufferUsage.STORAGE }));
      const entries: GPUBindGroupEntry[] = info.storage.map((_, binding) => ({ binding, resource: { buffer: this.storage[binding]! } }));
      for (let u = 0; u < info.uniforms; u++) entries.push({ binding: info.storage.length + u, resource: { buffer: this.uniform! } });
      pass.setPipeline(p);
      pass.setBindGroup(0, device.createBindGroup({ label: `${requests[i]!.label}-placeholder`, layout: info.layout, entries }));
      pass.dispatchWorkgroups(1);
    });
    pass.end();
    device.queue.submit([enc.finish()]);
    const err = await device.popErrorScope();
    if (err) throw new Error(`background compile: ${err.message}`);
    await device.queue.onSubmittedWorkDone();
  }
}
