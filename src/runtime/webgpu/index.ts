/**
 * torch.webgpu: probing and initialising the device, and what it holds. Tensor
 * factories are synchronous, so the device is set up by `await isAvailable()` or
 * `await init()` before the first tensor is made on it.
 */
import { WgtorchError } from '../../ir/errors.ts';
import { registerBackend } from '../backend.ts';
import { WebGPUBackend } from './backend.ts';
import { getGPU, type GPUContext, type LimitOverrides } from './context.ts';

let backend: WebGPUBackend | null = null;
let initError: Error | null = null;

registerBackend('webgpu', () => {
  if (backend) return backend;
  throw new WgtorchError(
    initError
      ? `webgpu: no WebGPU device is available (${initError.message}).`
      : "webgpu: the device is not initialised yet. Fix: call `await torch.webgpu.isAvailable()` (or `await torch.webgpu.init()`) once before creating tensors on 'webgpu'.",
  );
});

/**
 * Sets up the device; throws with what is missing (and how to get it) when there is none.
 * `limits` requests smaller device limits than the adapter's (how code behaves on a device
 * with, say, 8 storage buffers per shader stage); it must come with the first init.
 */
export async function init(opts: { limits?: LimitOverrides } = {}): Promise<void> {
  if (backend) {
    if (opts.limits) await getGPU(opts); // throws when the device has other limits
    return;
  }
  try {
    const ctx = await getGPU(opts);
    backend ??= new WebGPUBackend(ctx);
    initError = null;
  } catch (e) {
    initError = e as Error;
    throw e;
  }
}

/** Whether a WebGPU adapter exists; when it does, the device is ready to use afterwards. Never throws. */
export async function isAvailable(): Promise<boolean> {
  try {
    await init();
    return true;
  } catch {
    return false;
  }
}

export function context(): GPUContext {
  if (!backend) throw new WgtorchError('webgpu: not initialised. Fix: await torch.webgpu.init() first.');
  return backend.ctx;
}

/** Live (held by tensors) and pooled (free for reuse) device memory. */
export function memoryStats() {
  return context().pool.stats();
}

/** Waits until every submitted kernel has finished. */
export async function synchronize(): Promise<void> {
  await context().sync();
}

/**
 * Dispatches and submits counted since the last reset (for benchmarks and tests), and
 * largestBuffer: bytes of the largest device buffer requested from the pool since then.
 */
export function counters() {
  const c = context();
  return { dispatches: c.dispatches, submits: c.submits, copies: c.copies, pipelinesCompiled: c.pipelinesCompiled, largestBuffer: c.pool.largestRequest };
}
export function resetCounters(): void {
  context().resetCounters();
}
