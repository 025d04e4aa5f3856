/**
 * Gating: after a device-side value check (device-checks.ts) has been recorded, every later
 * dispatch runs through dispatchWorkgroupsIndirect, its workgroup counts read from an args
 * buffer. A one-invocation-group gate kernel, recorded right after each check (and at the
 * start of each batch while a check is pending), zeroes the counts of every later dispatch
 * of its batch when any check's flag is set. So once a check fails on the device, nothing
 * after it writes (no parameter, gradient or optimizer state changes) until the flags are
 * read, at the next readback, which throws the check's error. The gated kernels bind
 * nothing extra; a dispatch with zero workgroups is a no-op.
 *
 * The counts are written with one writeBuffer per batch at submit, which the queue runs
 * before the batch's commands (as the params ring is); the gate kernels then run in order
 * inside the pass.
 */
import { CHECK_SLOTS } from './device-checks.ts';

export const GATE_LAYOUT = { storage: ['read', 'read_write'], uniforms: 1, workgroupSize: [64, 1, 1] } as const;

export const GATE_WGSL = /* wgsl */ `
struct P { first: u32, end: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> flags: array<i32>;
@group(0) @binding(1) var<storage, read_write> args: array<u32>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32) {
  var failed = false;
  for (var s = 0u; s < ${CHECK_SLOTS}u; s = s + 1u) {
    if (flags[s * 4u] > 0) { failed = true; }
  }
  if (!failed) { return; }
  for (var i = p.first * 3u + li; i < p.end * 3u; i = i + 64u) { args[i] = 0u; }
}`;

/** The workgroup counts of one batch's gated dispatches, three words each. */
export class GateArgs {
  readonly buffer: GPUBuffer;
  readonly capacity: number;
  private readonly data: Uint32Array<ArrayBuffer>;
  used = 0;

  constructor(device: GPUDevice, capacity: number) {
    this.capacity = capacity;
    this.buffer = device.createBuffer({
      label: 'gated-dispatch-counts',
      size: capacity * 12,
      usage: GPUBufferUsage.INDIRECT | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    this.data = new Uint32Array(capacity * 3);
  }

  /** Stores a dispatch's counts; returns the byte offset to dispatch indirectly from. */
  add(x: number, y: number, z: number): number {
    const i = this.used++;
    this.data.set([x, y, z], i * 3);
    return i * 12;
  }

  get full(): boolean {
    return this.used >= this.capacity;
  }

  /** Params of a gate kernel that zeroes the counts of dispatches recorded after it (to the end of the batch). */
  gateParams(): Uint32Array {
    return new Uint32Array([this.used, this.capacity, 0, 0]);
  }

  /** At submit: the batch's counts go to the device ahead of its commands. */
  upload(queue: GPUQueue): void {
    if (this.used) queue.writeBuffer(this.buffer, 0, this.data, 0, this.used * 3);
    this.used = 0;
  }

  reset(): void {
    this.used = 0;
  }
}
