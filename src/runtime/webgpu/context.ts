// The GPU context of the runtime: device, buffer pool, pipeline cache, and a
// batching dispatcher that turns many small dispatches into few submits.
//
// Costs measured on lavapipe (Mesa 25, Dawn `webgpu` 0.6.2, 2 cores) that
// shape this file: a dispatch recorded into an open pass costs a few us, a
// submit+wait ~44-130 us, a 4-byte readback ~50 us, createBindGroup ~25 us,
// a new pipeline 0.15-2 s of LLVM compile at its first dispatch (a few ms
// once Mesa's on-disk shader cache has it).

import { BufferPool } from './buffer-pool.ts';
import { WgtorchError } from '../../ir/errors.ts';
import { PipelineCache, type PipelineInfo, type ShaderLayout } from './pipeline-cache.ts';
import { DeviceChecks } from './device-checks.ts';
import { GATE_LAYOUT, GATE_WGSL, GateArgs } from './dispatch-gate.ts';
import { platformGPU } from '../../platform/gpu.ts';
import { BackgroundCompiler } from './background-compile.ts';
import { envVar } from '../../platform/env.ts';
import { sweepableRegistry } from '../../platform/gc.ts';
import { GcPressure } from './gc-pressure.ts';
import { POLL_PAUSE_MS, pollGently } from './gentle-poll.ts';
import { subgroupsFit } from '../../codegen-wgsl/matmul.ts';

export { BufferPool, sizeClass, type PoolStats } from './buffer-pool.ts';
export { PipelineCache, type PipelineInfo, type PipelineRequest } from './pipeline-cache.ts';

export type Workgroups = readonly [number, number, number];
/** A storage binding: a whole buffer, or a byte range of one (offset a multiple of minStorageBufferOffsetAlignment). */
export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };
const bufferOf = (b: BufferBinding): GPUBuffer => (b instanceof GPUBuffer ? b : b.buffer);

const NO_ADAPTER = `WebGPU: no GPU adapter found.
  In Node, Dawn (npm 'webgpu') needs a Vulkan driver. Without a GPU, use Mesa's
  lavapipe (Vulkan on the CPU, Mesa >= 24). On Debian:
      sudo bash scripts/setup-webgpu.sh
  which installs mesa-vulkan-drivers from bookworm-backports.
  In a browser: use a WebGPU-enabled browser (Chrome/Edge 113+, Safari 26+, Firefox 141+ on Windows).`;

/**
 * Folds a 1D count of workgroups into (x, y, 1) so that no dimension exceeds
 * maxPerDim (65535 by default). x*y may exceed total by less than y, so a
 * kernel must bounds-check. A kernel reconstructs its linear indices as
 *
 *   @builtin(workgroup_id) wid, @builtin(num_workgroups) nwg, @builtin(global_invocation_id) gid
 *   let workgroup = wid.x + wid.y * nwg.x;
 *   let i = gid.x + gid.y * (nwg.x * WORKGROUP_SIZE_X);   // linear invocation
 *   if (i >= n) { return; }
 */
export function workgroupGrid(totalWorkgroups: number, maxPerDim = 65535): [number, number, number] {
  const total = Math.max(0, Math.ceil(totalWorkgroups));
  if (total <= maxPerDim) return [total, 1, 1];
  const y = Math.ceil(total / maxPerDim);
  if (y > maxPerDim) throw new Error(`workgroupGrid: ${total} workgroups exceed ${maxPerDim}^2`);
  return [Math.ceil(total / y), y, 1];
}

/**
 * Can sleep before awaiting GPU completion, for part of the expected time (a
 * queue simulation with a learned ns-per-cost-unit rate). Awaiting
 * mapAsync/onSubmittedWorkDone in Dawn-node polls on the main thread and took
 * a core that lavapipe's workers need; sleeping through most of the expected
 * time first measured ~30% faster GPU work on 2 cores.
 *
 * The polls now pause between themselves, longer as a wait goes on
 * (gentle-poll.ts), which saves that core without an estimate, so the sleep
 * is off by default (sleepFraction 0). Under load the estimate fed on its own
 * oversleeps (slept time counts as busy time), and a timer overshoots by 1 ms
 * or more: the seed compiled step, A/B in one process under load, 22.1 ms
 * median spinning after a sleep, 13.7 polling gently after a sleep, 9.6
 * polling gently unslept.
 */
class WaitEstimator {
  /** ns per cost unit (cost: rough FLOP-equivalents, see GPUContext.dispatch) */
  nsPerCost = 0.1;
  /** part of the expected remaining time to sleep; 0 (the default) disables sleeping */
  sleepFraction = 0;
  /** below this expected remaining time (ms) just await: timers are ~1 ms coarse */
  minSleepMs = 2;
  /** ms each of Dawn-node's polls pauses instead of spinning a core (gentle-poll.ts); 0 spins */
  pollPauseMs = POLL_PAUSE_MS;
  private static readonly OVERHEAD_MS = 0.1; // fixed per-wait cost, kept out of the rate
  private static readonly MIN_LEARN_COST = 1e6;
  private static readonly MIN_NS_PER_COST = 0.005;
  private static readonly MAX_NS_PER_COST = 5;

  private gpuFreeAt = 0; // predicted time the queue runs dry
  private idleStart = 0; // last submit that found the queue idle
  private costSinceIdle = 0;
  private compiling = false; // a first dispatch of some pipeline: compile time dwarfs the rate

  submitted(cost: number, compiles: boolean): void {
    const now = performance.now();
    if (now >= this.gpuFreeAt) {
      this.idleStart = now;
      this.costSinceIdle = 0;
    }
    this.costSinceIdle += cost;
    this.compiling ||= compiles;
    this.gpuFreeAt = Math.max(this.gpuFreeAt, now) + WaitEstimator.OVERHEAD_MS + (cost * this.nsPerCost) / 1e6;
  }

  async wait(done: () => Promise<unknown>): Promise<void> {
    const remaining = this.gpuFreeAt - performance.now();
    let slept = false;
    if (!this.compiling && this.sleepFraction > 0 && remaining > this.minSleepMs) {
      await new Promise((r) => setTimeout(r, remaining * this.sleepFraction));
      slept = true;
    }
    const woke = performance.now();
    await pollGently(done, this.pollPauseMs);
    const end = performance.now();
    const busy = end - this.idleStart - WaitEstimator.OVERHEAD_MS;
    // Learn only from batches large enough to time (a tiny batch's "busy" time is mostly the
    // JavaScript that ran before the wait), and keep the rate in a sane range: one bad sample
    // must not make every later readback sleep for seconds.
    if (!this.compiling && this.costSinceIdle >= WaitEstimator.MIN_LEARN_COST) {
      if (slept && end - woke < 0.3) this.nsPerCost *= 0.5; // GPU was already done: we overslept
      else if (busy > 1) this.nsPerCost = 0.7 * this.nsPerCost + (0.3 * busy * 1e6) / this.costSinceIdle;
      this.nsPerCost = Math.min(WaitEstimator.MAX_NS_PER_COST, Math.max(WaitEstimator.MIN_NS_PER_COST, this.nsPerCost));
    }
    this.gpuFreeAt = end;
    this.costSinceIdle = 0;
    this.compiling = false;
  }
}

/**
 * A caller's memo of one dispatch site (a compiled plan's dispatch): its last bind group, and
 * the pipeline, buffers and params slots it was made for. A call that binds the same again
 * takes it without building the bind-group cache's key (a string of every buffer's id).
 */
export interface DispatchSite {
  pipeline: GPUComputePipeline | null;
  buffers: readonly BufferBinding[];
  /** params slots as offset, size pairs in the ring */
  slots: number[];
  group: GPUBindGroup | null;
}
export const newDispatchSite = (): DispatchSite => ({ pipeline: null, buffers: [], slots: [], group: null });

function sameSite(site: DispatchSite, pipeline: GPUComputePipeline, buffers: readonly BufferBinding[], slots: readonly number[]): boolean {
  if (site.pipeline !== pipeline || site.buffers.length !== buffers.length || site.slots.length !== slots.length) return false;
  for (let i = 0; i < slots.length; i++) if (site.slots[i] !== slots[i]) return false;
  for (let i = 0; i < buffers.length; i++) {
    const a = site.buffers[i]!;
    const b = buffers[i]!;
    if (a === b) continue;
    if (a instanceof GPUBuffer || b instanceof GPUBuffer || a.buffer !== b.buffer || a.offset !== b.offset || a.size !== b.size) return false;
  }
  return true;
}

const BIND_GROUP_CACHE_MAX = 4096;
/**
 * Bind groups alive at once (created, their JS objects not yet collected) past which a dispatch
 * fails with advice instead of crashing: lavapipe ended the process with SIGSEGV near 65,536 live
 * bind groups. Each eager op on a new tensor needs a new bind group, and V8 collects the old ones
 * only between tasks, so a loop that never awaits piles them up (~50 per step of the README
 * model: a loop reading its loss every 1000 steps crashed near step 1000) unless it ends
 * library calls, where gc-pressure.ts reclaims in the task.
 */
const LIVE_BIND_GROUPS_MAX = 56_000;

export class GPUContext {
  /** dispatches recorded since the last resetCounters() */
  dispatches = 0;
  /** queue submits since the last resetCounters() */
  submits = 0;
  /** buffer-to-buffer copies recorded between dispatches since the last resetCounters() */
  copies = 0;
  /** pipelines created since the last resetCounters() */
  pipelinesCompiled = 0;
  /** bind groups created (cache misses) since the last resetCounters() */
  bindGroupsCreated = 0;
  /** an open batch is submitted once it holds this many dispatches */
  maxBatchDispatches = 512;

  readonly pool: BufferPool;
  readonly pipelines: PipelineCache;
  readonly limits: GPUSupportedLimits;
  readonly waiter = new WaitEstimator();
  /** value checks that ran on the device, reported at the next readback */
  readonly checks: DeviceChecks;

  private readonly staging: BufferPool;
  private errors: Error[] = [];
  private lost: GPUDeviceLostInfo | null = null;

  // The open batch.
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private batchDispatches = 0;
  private batchCost = 0;
  private batchCompiles = false;
  private batchBuffers = new Set<GPUBuffer>();
  private batchLabels = new Set<string>();
  /** counts of the batch's gated dispatches (see dispatch-gate.ts) */
  private readonly gateArgs: GateArgs;
  /** the batch has a gate kernel after its last check (or from its start) */
  private batchGated = false;
  private recordingGate = false;
  private submittedLabels: string[] = [];
  private lastPipeline: GPUComputePipeline | null = null;

  // Uniform params: one ring per batch, written with a single writeBuffer at
  // flush. Each dispatch binds its own slot with a plain (static) offset; the
  // bind group for (pipeline layout, buffers, slot) is cached, so a repeated
  // step creates none. Measured per tiny dispatch on lavapipe, 512 per submit
  // (record / total us): new uniform buffer + bind group 34 / 65, ring with
  // new bind groups 30 / 55, ring + dynamic offsets and one cached bind group
  // 3-6 / 91-97 (dynamic offsets slow lavapipe's dispatch itself), ring +
  // static offsets with cached bind groups 2.8 / 21 (4.4 / 27 through this
  // class). Reusing the ring next batch is safe: that batch's writeBuffer is
  // queued after this batch's submit.
  private readonly ring: GPUBuffer;
  private readonly ringData: Uint8Array<ArrayBuffer>;
  private ringUsed = 0;
  private bindGroups = new Map<string, GPUBindGroup>();
  /** bind groups whose JS objects are still alive (FinalizationRegistry counts them down) */
  liveBindGroups = 0;
  /** collections on demand and in-task finalizers, for buffers and bind groups (see gc-pressure.ts) */
  readonly pressure = new GcPressure();
  private readonly bindGroupGone = this.pressure.sweeps(sweepableRegistry<null>(() => this.liveBindGroups--));
  private bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;

  constructor(
    /** kept referenced for the device's lifetime: Dawn-node crashes at random if the GPU object is collected */
    readonly gpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    /** limits asked for below the adapter's: honoured here even where the driver grants more (Dawn rounds up to its tiers) */
    overrides: LimitOverrides = {},
  ) {
    this.limits = effectiveLimits(device.limits, overrides);
    this.pool = new BufferPool(device);
    this.checks = new DeviceChecks(device);
    this.staging = new BufferPool(device, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'staging');
    this.pipelines = new PipelineCache(
      device,
      () => this.pipelinesCompiled++,
      (e) => this.errors.push(e),
      () => this.limits.maxStorageBuffersPerShaderStage,
    );
    const align = this.limits.minUniformBufferOffsetAlignment;
    const ringBytes = Math.max(64 * 1024, this.maxBatchDispatches * Math.max(align, 32));
    this.ring = device.createBuffer({ label: 'params-ring', size: ringBytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.ringData = new Uint8Array(ringBytes);
    this.gateArgs = new GateArgs(device, this.maxBatchDispatches);
    device.onuncapturederror = (ev) => {
      // Errors arrive asynchronously, usually about the batch submitted last.
      const labels = new Set([...this.submittedLabels, ...this.batchLabels]);
      const where = labels.size ? ` (recent pipelines: ${[...labels].join(', ')})` : '';
      this.errors.push(new Error(`WebGPU ${ev.error.constructor.name}: ${ev.error.message}${where}`));
    };
    void device.lost.then((info) => {
      this.lost = info;
      if (current?.ctx === this) current = null; // the next getGPU() makes a fresh device
    });
  }

  private backgroundCompiler: BackgroundCompiler | null = null;
  /** compiles pipelines on a second device, off this one's queue (see background-compile.ts) */
  get background(): BackgroundCompiler {
    return (this.backgroundCompiler ??= new BackgroundCompiler(this.gpu, this.device));
  }

  get adapterInfo(): GPUAdapterInfo {
    return this.adapter.info;
  }

  /** Whether the subgroup matmul variants may run here: the feature on, subgroups exactly as wide as they were written for. */
  get subgroupsFit(): boolean {
    return subgroupsFit(this.adapter.info as { subgroupMinSize?: number; subgroupMaxSize?: number }, this.device.features.has('subgroups'));
  }

  resetCounters(): void {
    this.dispatches = this.submits = this.copies = this.pipelinesCompiled = this.bindGroupsCreated = 0;
    this.pool.resetLargest();
  }

  /** Cached pipeline for this WGSL, whose bindings and workgroup size its generator declares (see PipelineCache). */
  pipeline(wgsl: string, label: string, layout: ShaderLayout, entryPoint = 'main'): GPUComputePipeline {
    return this.pipelines.getPipeline(wgsl, label, layout, entryPoint);
  }

  /**
   * Records a dispatch into the open batch. buffers bind as bindings 0..n-1 of
   * group 0 and params (if the shader declares a uniform) as binding n; a list
   * of params binds as n, n+1, ... (a packed dispatch of independent kernels).
   * cost: rough FLOP-equivalents for the wait estimate; defaults to 4 per
   * invocation. `site`: the caller's memo of this dispatch's last bind group (DispatchSite).
   * Throws remembered async errors first.
   */
  dispatch(
    pipeline: GPUComputePipeline,
    buffers: readonly BufferBinding[],
    params: ArrayBuffer | ArrayBufferView | readonly ArrayBufferView[] | null,
    workgroups: Workgroups,
    cost?: number,
    site?: DispatchSite,
  ): void {
    this.throwPending();
    const info = this.pipelines.info(pipeline);
    if (buffers.length !== info.storage.length) {
      throw new Error(`${info.label}: expects ${info.storage.length} storage buffers, got ${buffers.length}`);
    }
    const list: readonly (ArrayBuffer | ArrayBufferView)[] = params === null ? [] : Array.isArray(params) ? params : [params as ArrayBuffer | ArrayBufferView];
    if (list.length !== info.uniforms) {
      throw new Error(`${info.label}: ${info.uniforms ? `expects ${info.uniforms} params` : 'declares no uniform'}, but ${list.length} were given`);
    }
    const [x, y, z] = workgroups;
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > max || y > max || z > max) throw new Error(`${info.label}: workgroups ${workgroups} exceed ${max} per dimension; use workgroupGrid`);
    // while a device-side check is pending, nothing runs once it has failed (dispatch-gate.ts)
    const gated = this.checks.armed && !this.recordingGate;
    if (gated && this.gateArgs.full) this.flush();

    /** the params slots in the ring: offset, size pairs */
    const slots: number[] = [];
    const align = this.limits.minUniformBufferOffsetAlignment;
    // all of one dispatch's params go into the same batch's ring
    const gateBytes = gated && !this.batchGated ? Math.ceil(16 / align) * align : 0;
    let need = gateBytes;
    for (const p of list) need += Math.ceil(Math.ceil(p.byteLength / 16) * 16 / align) * align;
    if (this.ringUsed + need > this.ring.size) this.flush();
    if (gated && !this.batchGated) this.recordGate();
    for (const p of list) {
      const size = Math.ceil(p.byteLength / 16) * 16;
      if (size > this.limits.maxUniformBufferBindingSize) throw new Error(`${info.label}: params of ${size} bytes exceed maxUniformBufferBindingSize`);
      const offset = this.ringUsed;
      const bytes = p instanceof ArrayBuffer ? new Uint8Array(p) : new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
      this.ringData.set(bytes, offset);
      this.ringUsed = Math.ceil((offset + size) / align) * align;
      slots.push(offset, size);
    }
    if (!this.pass) this.open();

    const bg = site?.group && sameSite(site, pipeline, buffers, slots) ? site.group : this.bindGroup(info, buffers, slots);
    if (site && site.group !== bg) {
      site.pipeline = pipeline;
      site.buffers = buffers;
      site.slots = slots;
      site.group = bg;
    }

    const pass = this.pass!;
    if (pipeline !== this.lastPipeline) {
      pass.setPipeline(pipeline);
      this.lastPipeline = pipeline;
    }
    pass.setBindGroup(0, bg);
    if (gated) pass.dispatchWorkgroupsIndirect(this.gateArgs.buffer, this.gateArgs.add(x, y, z));
    else pass.dispatchWorkgroups(x, y, z);

    for (const b of buffers) this.batchBuffers.add(bufferOf(b));
    this.batchLabels.add(info.label);
    this.batchCost += cost ?? x * y * z * info.workgroupInvocations * 4;
    if (!info.dispatched) {
      info.dispatched = true;
      this.batchCompiles = true;
    }
    this.dispatches++;
    this.pressure.dispatched();
    if (++this.batchDispatches >= this.maxBatchDispatches && !this.recordingGate) this.flush();
  }

  /** The cached bind group of (pipeline layout, buffers, params slots), created on a miss. */
  private bindGroup(info: PipelineInfo, buffers: readonly BufferBinding[], slots: readonly number[]): GPUBindGroup {
    let key = `${info.id}|`;
    for (let i = 0; i < slots.length; i += 2) key += `${slots[i]}+${slots[i + 1]};`;
    for (const b of buffers) key += b instanceof GPUBuffer ? `|${this.idOf(b)}` : `|${this.idOf(b.buffer)}@${b.offset}+${b.size}`;
    let bg = this.bindGroups.get(key);
    if (!bg) {
      if (this.bindGroups.size >= BIND_GROUP_CACHE_MAX) this.bindGroups.clear();
      const entries: GPUBindGroupEntry[] = buffers.map((b, binding) => ({ binding, resource: b instanceof GPUBuffer ? { buffer: b } : b }));
      for (let u = 0; u < slots.length / 2; u++) entries.push({ binding: buffers.length + u, resource: { buffer: this.ring, offset: slots[2 * u]!, size: slots[2 * u + 1]! } });
      if (this.liveBindGroups >= LIVE_BIND_GROUPS_MAX) {
        throw new WgtorchError(
          `webgpu: ${this.liveBindGroups} bind groups are alive: this loop has run many ops without ever awaiting, and WebGPU objects` +
            ' (bind groups, dead tensors\' buffers) are only reclaimed between JavaScript tasks; a few thousand more crash the driver.' +
            ' Fix: await something every few hundred steps (e.g. `if (t % 100 === 0) console.log(t, await loss.item())`, or `await torch.webgpu.synchronize()`),' +
            ' or compile the step (torch.compile reuses its buffers and bind groups).',
        );
      }
      bg = this.device.createBindGroup({ label: info.label, layout: info.layout, entries });
      this.liveBindGroups++;
      this.bindGroupGone.register(bg, null);
      this.bindGroups.set(key, bg);
      this.bindGroupsCreated++;
      this.pressure.boundGroup();
    }
    return bg;
  }

  /** A value check was just recorded: dispatches after it get a gate of their own, which reads its flag. */
  checkRecorded(): void {
    this.batchGated = false;
  }

  private recordGate(): void {
    this.recordingGate = true;
    try {
      this.dispatch(this.pipeline(GATE_WGSL, 'dispatch_gate', GATE_LAYOUT), [this.checks.buffer, this.gateArgs.buffer], this.gateArgs.gateParams(), [1, 1, 1], 64);
    } finally {
      this.recordingGate = false;
    }
    this.batchGated = true;
  }

  /** Ends the open pass and submits it. No-op when nothing is recorded. */
  flush(): void {
    this.submit(null);
  }

  /** Drops the recorded, unsubmitted batch (a compiled call that failed while recording its kernels). */
  discardOpenBatch(): void {
    this.pass?.end();
    this.encoder = this.pass = null;
    this.gateArgs.reset();
    this.batchGated = false;
    this.ringUsed = this.batchDispatches = this.batchCost = 0;
    this.batchCompiles = false;
    this.batchBuffers.clear();
    this.batchLabels.clear();
  }

  /** Copies device data to the CPU (flushes first). byteOffset must be a multiple of 4. */
  async read(buffer: GPUBuffer, byteLength: number, byteOffset = 0): Promise<ArrayBuffer> {
    if (byteOffset % 4 !== 0) throw new Error('read: byteOffset must be a multiple of 4');
    const size = Math.ceil(byteLength / 4) * 4;
    if (byteOffset + size > buffer.size) throw new Error(`read: ${byteOffset}+${size} bytes past the end of a ${buffer.size}-byte buffer`);
    // the flags of device-side value checks come back with the data, in the same submit
    const flags = this.checks.armed ? this.checks.bytes : 0;
    const staging = this.staging.acquire(size + flags);
    try {
      this.submit((enc) => {
        enc.copyBufferToBuffer(buffer, byteOffset, staging, 0, size);
        if (flags) enc.copyBufferToBuffer(this.checks.buffer, 0, staging, size, flags);
      });
      await this.waiter.wait(() => staging.mapAsync(GPUMapMode.READ, 0, size + flags));
      const all = staging.getMappedRange(0, size + flags).slice(0);
      staging.unmap();
      this.throwPending();
      const failed = flags ? this.checks.report(new Int32Array(all, size, flags / 4)) : null;
      if (failed) throw failed;
      return all.slice(0, byteLength);
    } finally {
      if (staging.mapState === 'unmapped') this.staging.release(staging);
    }
  }

  /** Uploads data with queue.writeBuffer (byte sizes multiple of 4). */
  write(buffer: GPUBuffer, data: ArrayBuffer | ArrayBufferView, byteOffset = 0): void {
    // writeBuffer executes ahead of the still-unsubmitted batch; if that batch
    // touches this buffer, submit it first so program order holds.
    if (this.batchBuffers.has(buffer)) this.flush();
    if (data instanceof ArrayBuffer) this.device.queue.writeBuffer(buffer, byteOffset, data);
    else this.device.queue.writeBuffer(buffer, byteOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Pooled buffer filled with data. */
  upload(data: ArrayBufferView): GPUBuffer {
    const buf = this.pool.acquire(data.byteLength);
    this.write(buf, data);
    return buf;
  }

  /** Flushes and waits until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    if (this.checks.armed) {
      await this.read(this.checks.buffer, 4); // reports the checks' flags
      return;
    }
    this.flush();
    await this.waiter.wait(() => this.device.queue.onSubmittedWorkDone());
    this.throwPending();
  }

  /** Frees pooled (released) buffers and cached bind groups. */
  trim(): void {
    this.flush();
    this.pool.trim();
    this.staging.trim();
    this.bindGroups.clear();
  }

  /** Destroys the device; the next getGPU() creates a fresh context. */
  destroy(): void {
    if (current?.ctx === this) current = null;
    this.encoder = this.pass = null;
    this.device.destroy();
  }

  /**
   * Records a buffer-to-buffer copy into the open batch, in order with its dispatches (it ends
   * the open compute pass; the next dispatch opens another). A copy is not a dispatch: compiled
   * plans move the members of a binding arena this way. Offsets and size in bytes, multiples of 4.
   */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.throwPending();
    if (size <= 0) return;
    this.encoder ??= this.device.createCommandEncoder();
    this.pass?.end();
    this.pass = null;
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
    this.batchBuffers.add(src);
    this.batchBuffers.add(dst);
    this.copies++;
  }

  private open(): void {
    this.encoder ??= this.device.createCommandEncoder();
    this.pass = this.encoder.beginComputePass();
    this.lastPipeline = null;
  }

  private submit(extra: ((enc: GPUCommandEncoder) => void) | null): void {
    this.throwPending();
    if (!this.encoder && !extra) return;
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    this.pass?.end();
    extra?.(this.encoder);
    if (this.ringUsed) this.device.queue.writeBuffer(this.ring, 0, this.ringData, 0, this.ringUsed);
    this.gateArgs.upload(this.device.queue);
    this.batchGated = false;
    this.device.queue.submit([this.encoder.finish()]);
    this.submits++;
    this.waiter.submitted(this.batchCost, this.batchCompiles);
    this.submittedLabels = [...this.batchLabels];
    this.encoder = this.pass = null;
    this.ringUsed = this.batchDispatches = this.batchCost = 0;
    this.batchCompiles = false;
    this.batchBuffers.clear();
    this.batchLabels.clear();
  }

  private idOf(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Throws (once) what the device reported asynchronously; a lost device throws forever. */
  private throwPending(): void {
    if (this.lost) throw new Error(`WebGPU device lost (${this.lost.reason}): ${this.lost.message}`);
    if (this.errors.length) {
      const errs = this.errors;
      this.errors = [];
      // The recorded batch may reference invalid objects: drop it rather than submit it.
      this.encoder = this.pass = null;
      this.gateArgs.reset();
      this.batchGated = false;
      this.ringUsed = this.batchDispatches = this.batchCost = 0;
      this.batchBuffers.clear();
      this.batchLabels.clear();
      throw errs.length === 1 ? errs[0]! : new Error(errs.map((e) => e.message).join('\n\n'));
    }
  }
}

let current: { ctx: GPUContext | null; promise: Promise<GPUContext>; limits: string } | null = null;

/** Device limits to request below what the adapter offers (a test of a smaller device: 8 storage buffers per stage, say). */
export type LimitOverrides = Partial<Record<string, number>>;

/**
 * The process-wide GPU context, created on first call (with `limits` lowered where given).
 * Throws with setup advice when there is no adapter, and when a context with other limits exists.
 */
export function getGPU(opts: { limits?: LimitOverrides } = {}): Promise<GPUContext> {
  const limits = JSON.stringify(opts.limits ?? {});
  if (current && opts.limits && current.limits !== limits) {
    return Promise.reject(new Error(`WebGPU: the device was already created with limits ${current.limits}; it cannot be re-created with ${limits}. Fix: pass the limits to the first torch.webgpu.init().`));
  }
  if (!current) {
    const entry: { ctx: GPUContext | null; promise: Promise<GPUContext>; limits: string } = { ctx: null, promise: null!, limits };
    entry.promise = createContext(opts.limits ?? {}).then(
      (ctx) => ((entry.ctx = ctx), ctx),
      (e: unknown) => {
        if (current === entry) current = null; // let a later call retry
        throw e;
      },
    );
    current = entry;
  }
  return current.promise;
}

/** Whether getGPU() can succeed. Never throws. */
export async function isAvailable(): Promise<boolean> {
  try {
    await getGPU();
    return true;
  } catch {
    return false;
  }
}

/** WGTORCH_NO_WEBGPU=1 hides every adapter: how a machine without one behaves (tests, the demo). */
const hidden = () => envVar('WGTORCH_NO_WEBGPU') === '1';

async function createContext(overrides: LimitOverrides): Promise<GPUContext> {
  if (hidden()) throw new Error(`${NO_ADAPTER}\n  (WGTORCH_NO_WEBGPU=1 is set: it hides every adapter.)`);
  const gpu = await platformGPU();
  if (!gpu) throw new Error(NO_ADAPTER);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(NO_ADAPTER);
  // Ask for everything the adapter has: the defaults are far below what CPUs
  // and GPUs offer (e.g. 128 MiB vs 2 GiB binding sizes, and a 256-byte
  // uniform offset alignment where lavapipe needs only 16).
  const requiredLimits: Record<string, number> = {};
  for (const k in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') requiredLimits[k] = v;
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in requiredLimits)) throw new Error(`WebGPU: unknown device limit '${k}'. Fix: use one of ${Object.keys(requiredLimits).join(', ')}.`);
    if (v !== undefined) requiredLimits[k] = Math.min(v, requiredLimits[k]!);
  }
  // 'subgroups': the subgroup matmul variants (codegen-wgsl/matmul.ts), tuning candidates where they fit (subgroupsFit)
  const requiredFeatures = (['shader-f16', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'wgtorch' });
  return new GPUContext(gpu, adapter, device, overrides);
}

/** The device's limits, each lowered to what was asked for: what every plan and check reads. */
function effectiveLimits(device: GPUSupportedLimits, overrides: LimitOverrides): GPUSupportedLimits {
  if (!Object.keys(overrides).length) return device;
  const out: Record<string, number> = {};
  for (const k in device) {
    const v = (device as unknown as Record<string, unknown>)[k];
    if (typeof v === 'number') out[k] = Math.min(v, overrides[k] ?? v);
  }
  return out as unknown as GPUSupportedLimits;
}
