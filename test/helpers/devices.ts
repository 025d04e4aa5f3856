/**
 * The devices a test suite runs on: cpu always; webgpu where an adapter exists.
 * In CI (CI=true) a missing adapter fails the run instead of skipping.
 */
import * as torch from '../../src/index.ts';
import type { Device } from '../../src/index.ts';

export const webgpuAvailable = await torch.webgpu.isAvailable();

if (!webgpuAvailable) {
  if (process.env.CI === 'true') {
    throw new Error('CI=true but no WebGPU adapter was found: the WebGPU tests must run in CI. Run `bash scripts/setup-webgpu.sh` (as root) first.');
  }
  console.warn(
    '\n*** WebGPU tests SKIPPED: no WebGPU adapter found. Install one with `sudo bash scripts/setup-webgpu.sh` (Mesa lavapipe). ***\n',
  );
}

export function testDevices(): Device[] {
  return webgpuAvailable ? ['cpu', 'webgpu'] : ['cpu'];
}
