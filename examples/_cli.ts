/**
 * The few command-line bits every example shares: `--device cpu|webgpu`
 * (or `--device=webgpu`, or the environment variable WGTORCH_DEVICE),
 * `--steps N`, and "was this file run directly?".
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/index.ts';
import type { Device } from '../src/index.ts';

export interface ExampleOptions {
  /** Training steps; the seed uses 500. */
  steps?: number;
  /** Where tensors and parameters live. */
  device?: Device;
  /** Where the `t loss` lines go (console.log by default). */
  log?: (line: string) => void;
}

const DEVICES: readonly Device[] = ['cpu', 'webgpu'];

function flag(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${name}`) {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
      return v;
    }
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

/** Reads `--device`, `--steps` and WGTORCH_DEVICE; the flag wins over the environment. */
export function parseCli(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): { device: Device; steps?: number } {
  const d = flag(argv, 'device') ?? env.WGTORCH_DEVICE ?? 'cpu';
  if (!DEVICES.includes(d as Device)) throw new Error(`unknown device '${d}': use one of ${DEVICES.join(', ')}`);
  const s = flag(argv, 'steps');
  let steps: number | undefined;
  if (s !== undefined) {
    steps = Number(s);
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got '${s}'`);
  }
  return { device: d as Device, steps };
}

/** True when the module with this `import.meta.url` is the script node/tsx was started with. */
export function isMain(importMetaUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const here = real(fileURLToPath(importMetaUrl));
  return here === real(script) || here.replace(/\.ts$/, '') === real(script).replace(/\.ts$/, '');
}

/** Runs an example's main with the command line's options, reporting errors with a non-zero exit code. */
export function runMain(main: (opts: ExampleOptions) => Promise<number[]>): void {
  let opts: { device: Device; steps?: number };
  try {
    opts = parseCli();
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  const t0 = performance.now();
  main(opts).then(
    (losses) => {
      const ms = performance.now() - t0;
      console.log(`# ${losses.length} steps on ${opts.device} in ${(ms / 1000).toFixed(2)} s; loss ${losses[0]} -> ${losses[losses.length - 1]}`);
    },
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/** Sets the device up before the first tensor is made on it (WebGPU's adapter is found asynchronously). */
export async function ready(device: Device): Promise<void> {
  if (device === 'webgpu') await torch.webgpu.init();
}

/** Lets timers and I/O run during a long cpu-bound loop (on the cpu device every await resolves at once). */
export function breathe(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
