/**
 * Value checks on the GPU without a readback on the hot path. A check kernel (index ranges)
 * counts the bad values of its site into a small flags buffer with atomics: how many, the
 * first element, the smallest and largest bad value. Each site (one op's check of one
 * tensor shape) owns four words. The next readback copies the flags along with the data it
 * reads (same submit) and throws the site's error, which names the op, the values and the
 * fix. Host code that still knows the values (int tensors uploaded from the host) checks
 * them before anything runs instead (see WebGPUBackend.check).
 */
import { WgtorchError } from '../../ir/errors.ts';
import type { IndexCheckAttrs } from '../../ir/value-checks.ts';
import { deviceIndexError } from '../../ir/value-checks.ts';
import { pendingChecks } from '../pending-checks.ts';

export const CHECK_WORKGROUP = 256;

/** The check kernel's bindings, as it declares them (the pipeline cache reads no WGSL). */
export const INDEX_CHECK_LAYOUT = { storage: ['read', 'read_write'], uniforms: 1, workgroupSize: [CHECK_WORKGROUP, 1, 1] } as const;

export const INDEX_CHECK_WGSL = /* wgsl */ `
struct P { n: u32, lo: i32, hi: i32, slot: u32, ignore: i32, hasIgnore: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> x: array<i32>;
@group(0) @binding(1) var<storage, read_write> flags: array<atomic<i32>>;
@group(0) @binding(2) var<uniform> p: P;
@compute @workgroup_size(${CHECK_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * (nwg.x * ${CHECK_WORKGROUP}u);
  if (i >= p.n) { return; }
  let v = x[i];
  if ((v < p.lo || v >= p.hi) && !(p.hasIgnore != 0u && v == p.ignore)) {
    let b = p.slot * 4u;
    atomicAdd(&flags[b], 1);
    atomicMin(&flags[b + 1u], i32(i));
    atomicMin(&flags[b + 2u], v);
    atomicMax(&flags[b + 3u], v);
  }
}`;

export const CHECK_SLOTS = 64;
const SLOTS = CHECK_SLOTS;
const I32_MAX = 0x7fffffff;
const I32_MIN = -0x80000000;

interface Site {
  key: string;
  attrs: IndexCheckAttrs;
  shape: number[];
}

export class DeviceChecks {
  readonly buffer: GPUBuffer;
  readonly bytes = SLOTS * 16;
  /** a check ran since the flags were last read */
  armed = false;
  private readonly sites: Site[] = [];
  private readonly slotOf = new Map<string, number>();
  private readonly init: Int32Array<ArrayBuffer>;

  constructor(private readonly device: GPUDevice) {
    this.buffer = device.createBuffer({ label: 'value-check-flags', size: this.bytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    this.init = new Int32Array(SLOTS * 4);
    for (let s = 0; s < SLOTS; s++) this.init.set([0, I32_MAX, I32_MAX, I32_MIN], s * 4);
    device.queue.writeBuffer(this.buffer, 0, this.init);
  }

  /** The flag slot of a check site; the last slot is shared once all are taken (its message then names the first site). */
  slot(attrs: IndexCheckAttrs, shape: readonly number[]): number {
    const key = `${attrs.op}|${attrs.what}|${attrs.lo}|${attrs.hi}|${attrs.ignore}|${shape.join('x')}`;
    let s = this.slotOf.get(key);
    if (s === undefined) {
      s = Math.min(this.sites.length, SLOTS - 1);
      if (s === this.sites.length) this.sites.push({ key, attrs, shape: [...shape] });
      this.slotOf.set(key, s);
    }
    if (!this.armed) pendingChecks.armed?.();
    this.armed = true;
    return s;
  }

  params(slot: number, n: number, c: IndexCheckAttrs): Uint32Array {
    const w = new Int32Array([n, c.lo, c.hi, slot, c.ignore ?? 0, c.ignore === null ? 0 : 1, 0, 0]);
    return new Uint32Array(w.buffer);
  }

  /** Reads flags copied back from the device: the error of the first site that failed, after resetting them all. */
  report(flags: Int32Array): WgtorchError | null {
    this.armed = false;
    let err: WgtorchError | null = null;
    for (let s = 0; s < this.sites.length && !err; s++) {
      const [count, first, min, max] = flags.subarray(s * 4, s * 4 + 4);
      if (count > 0) err = deviceIndexError(this.sites[s]!.attrs, this.sites[s]!.shape, { count: count!, first: first!, min: min!, max: max! });
    }
    if (err) this.device.queue.writeBuffer(this.buffer, 0, this.init);
    pendingChecks.reported?.(err !== null);
    return err;
  }
}
