// `npm start` as a user runs it: the demo script in a child process, on a machine without a
// WebGPU adapter (WGTORCH_NO_WEBGPU=1 hides it, so the probe fails as it does there), and
// with `--device cpu`. Both must train eagerly and compiled on the cpu, and say so.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { webgpuAvailable } from './helpers/devices.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

async function demo(args: string[], env: Record<string, string>): Promise<string> {
  const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'demo/main.ts', ...args], {
    cwd: root,
    env: { ...withoutDevice(process.env), ...env },
    timeout: 110_000,
  });
  return stdout + stderr;
}

/** The caller's WGTORCH_DEVICE would decide the device: each test sets what it means. */
function withoutDevice(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { WGTORCH_DEVICE: _, ...rest } = env;
  return rest;
}

function lossesOf(out: string, how: 'eager' | 'compiled'): number[] {
  const part = out.split(`wgtorch demo (${how})`)[1]!.split('\n\n')[0]!;
  return [...part.matchAll(/loss (\S+)/g)].map((m) => Number(m[1]));
}

describe('npm start without a GPU', () => {
  it('trains eagerly and compiled on the cpu when no adapter exists, and says so', async () => {
    const out = await demo(['--steps', '12'], { WGTORCH_NO_WEBGPU: '1' });
    expect(out).toContain('no WebGPU adapter found: training on the cpu, eagerly and compiled');
    expect(out).toContain("wgtorch demo (eager): TwoLayerNet(1000 -> 100 -> 10), Adam lr 1e-4, MSE (sum), batch 64, 12 steps on 'cpu'");
    expect(out).toContain("wgtorch demo (compiled): TwoLayerNet(1000 -> 100 -> 10), Adam lr 1e-4, MSE (sum), batch 64, 12 steps on 'cpu'");
    expect(out).toMatch(/compiled: \d+ fused kernels per step on the cpu/);
    expect(out).toContain('eager and compiled losses agree');
    expect(out).toMatch(/device: cpu\s*$/);
    expect(out).not.toMatch(/Cannot read|Error|Warning/);
    const eager = lossesOf(out, 'eager');
    const compiled = lossesOf(out, 'compiled');
    expect(eager).toHaveLength(2); // steps 0 and 11
    expect(compiled).toHaveLength(2);
    expect(compiled[1]).toBeLessThan(compiled[0]); // it trains
    for (let i = 0; i < 2; i++) expect(Math.abs(compiled[i] - eager[i]) / eager[i]).toBeLessThan(1e-4);
  });

  it('--device cpu does the same on any machine', async () => {
    const out = await demo(['--device', 'cpu', '--steps', '6'], {});
    expect(out).not.toContain('no WebGPU adapter found');
    expect(out).toContain("wgtorch demo (compiled): TwoLayerNet(1000 -> 100 -> 10), Adam lr 1e-4, MSE (sum), batch 64, 6 steps on 'cpu'");
    expect(out).toContain('eager and compiled losses agree');
    expect(out).toMatch(/device: cpu\s*$/);
    expect(out).not.toMatch(/Cannot read|Error|Warning/);
  });
});

describe.skipIf(!webgpuAvailable)('npm start on webgpu', () => {
  it("prints none of Dawn's native notices, and says which compiled steps ran eagerly while the kernels compiled", async () => {
    const out = await demo(['--steps', '4'], {});
    expect(out).toContain("wgtorch demo (compiled): TwoLayerNet(1000 -> 100 -> 10), Adam lr 1e-4, MSE (sum), batch 64, 4 steps on 'webgpu'");
    expect(out).toMatch(/steps 0-\d+ ran eagerly while the kernels compiled in the background; compiled from step \d+|all 4 steps ran eagerly: the kernels were still compiling/);
    expect(out).toContain('eager and compiled losses agree');
    expect(out).toMatch(/device: webgpu/);
    expect(out).not.toMatch(/artificially reduced|Warning|Error/);
  });
});
