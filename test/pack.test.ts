/**
 * The package as a user gets it: `npm pack` of the built package, installed into a
 * fresh folder (extracted into node_modules/wgtorch, its dependencies linked from this
 * checkout: no network), then `import * as torch from 'wgtorch'` in Node (dist/node),
 * through esbuild for a page (dist/browser), and in TypeScript (dist/types).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';
import { build, ROOT } from '../scripts/build.ts';

let tmp: string;
let app: string;
let files: string[];

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; dependencies: Record<string, string>; files: string[] };

/** Links a package from this checkout's node_modules into the app (what npm would have installed). */
function link(name: string): void {
  const to = join(app, 'node_modules', name);
  mkdirSync(join(to, '..'), { recursive: true });
  symlinkSync(realpathSync(join(ROOT, 'node_modules', name)), to, 'dir');
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wgtorch-pack-'));
  // pack from a staging copy, so this test never writes the checkout's dist/
  const stage = join(tmp, 'stage');
  await build({ outDir: join(stage, 'dist'), quiet: true });
  cpSync(join(ROOT, 'package.json'), join(stage, 'package.json'));
  cpSync(join(ROOT, 'README.md'), join(stage, 'README.md'));
  const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: stage, encoding: 'utf8' });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  files = info!.files.map((f) => f.path);

  app = join(tmp, 'app');
  mkdirSync(join(app, 'node_modules/wgtorch'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync('tar', ['-xzf', join(tmp, info!.filename), '-C', join(app, 'node_modules/wgtorch'), '--strip-components=1']);
  for (const dep of Object.keys(pkg.dependencies)) link(dep);
  link('@webgpu/types'); // what a TypeScript user adds for the GPU types
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships the built package only: dist/ with both builds and the types, package.json, README', () => {
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/node/index.js', 'dist/browser/index.js', 'dist/types/index.d.ts']));
    expect(files.filter((f) => !f.startsWith('dist/') && f !== 'package.json' && f !== 'README.md')).toEqual([]);
    expect(files.some((f) => f.startsWith('dist/web/'))).toBe(false);
  });

  it("import * as torch from 'wgtorch' in Node resolves to dist/node and trains", () => {
    writeFileSync(
      join(app, 'train.mjs'),
      `import * as torch from 'wgtorch';
const where = import.meta.resolve('wgtorch');
torch.manualSeed(0);
const model = new torch.nn.Sequential(new torch.nn.Linear(8, 16), new torch.nn.ReLU(), new torch.nn.Linear(16, 1));
const opt = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
const x = torch.randn(32, 8), y = torch.randn(32, 1);
const losses = [];
for (let t = 0; t < 20; t++) {
  const loss = new torch.nn.MSELoss()(model(x), y);
  opt.zeroGrad(); loss.backward(); opt.step();
  losses.push(await loss.item());
}
console.log(JSON.stringify({ where, first: losses[0], last: losses.at(-1) }));
process.exit(0); // Dawn, if something loaded it, keeps threads alive
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ['train.mjs'], { cwd: app, encoding: 'utf8' }).trim().split('\n').at(-1)!) as { where: string; first: number; last: number };
    expect(out.where).toBe(pathToFileURL(join(realpathSync(app), 'node_modules/wgtorch/dist/node/index.js')).href);
    expect(out.last).toBeLessThan(out.first);
  });

  it('a bundler building a page picks dist/browser, with no Node-only module, and the bundle runs', async () => {
    writeFileSync(
      join(app, 'page.ts'),
      `import * as torch from 'wgtorch';
export async function run(): Promise<{ gpu: boolean; sum: number }> {
  const gpu = await torch.webgpu.isAvailable();
  torch.manualSeed(1);
  const a = torch.ones(4, 5).mul(2);
  return { gpu, sum: await torch.mm(a, a.t()).sum().item() };
}
`,
    );
    const r = await esbuild.build({
      absWorkingDir: app,
      entryPoints: ['page.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      outfile: 'out/page.js',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('node_modules/wgtorch/dist/browser/index.js');
    expect(inputs.filter((p) => p.includes('dist/node/') || p.includes('node_modules/webgpu/') || p.startsWith('node:'))).toEqual([]);
    const page = (await import(pathToFileURL(join(app, 'out/page.js')).href)) as { run(): Promise<{ gpu: boolean; sum: number }> };
    // in Node the page has no navigator.gpu: it says so and computes on the cpu
    expect(await page.run()).toEqual({ gpu: false, sum: 4 * 4 * 5 * 4 });
  });

  it('TypeScript type-checks a user program against the shipped declarations', () => {
    writeFileSync(
      join(app, 'typed.ts'),
      `import * as torch from 'wgtorch';
const t: torch.Tensor = torch.randn(2, 3, { requiresGrad: true });
const shape: number[] = t.shape;
const step = torch.compile(() => t.mul(2).sum());
const kernels: torch.KernelInfo[] = step.graphs()[0]?.kernels ?? [];
export { shape, kernels };
`,
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    const args = ['--noEmit', '--strict', '--module', 'esnext', '--moduleResolution', 'bundler', '--target', 'es2022', '--lib', 'es2022,dom', 'typed.ts'];
    let out = '';
    try {
      execFileSync(process.execPath, [tsc, ...args], { cwd: app, encoding: 'utf8' });
    } catch (e) {
      out = String((e as { stdout?: string }).stdout ?? e);
    }
    expect(out).toBe('');
  });
});
