/**
 * `npm run build`: the browser bundle holds no Node-only module (checked on esbuild's
 * metafile of the same build), stays under its size budget, and runs where there is
 * neither Dawn nor a file system; the Node bundle and the declarations are there.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as esbuild from 'esbuild';
import { browserOptions, build, GZIP_BUDGET_BYTES, NODE_ONLY, ROOT, type BuildReport } from '../scripts/build.ts';

let tmp: string;
let report: BuildReport;
let lines: string[];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'wgtorch-build-'));
  lines = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    report = await build({ outDir: join(tmp, 'dist') });
  } finally {
    console.log = log;
  }
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('npm run build', () => {
  it('the browser graph has no Node-only module: every platform seam is its .browser.ts twin', () => {
    const inputs = Object.keys(report.metafile.inputs);
    expect(inputs.length).toBeGreaterThan(50);
    const nodeOnly = inputs.filter((p) => /(^|\/)node_modules\/webgpu\//.test(p) || p.startsWith('node:') || NODE_ONLY.test(p));
    expect(nodeOnly).toEqual([]);
    // a source file with a browser twin must not be in the graph itself
    const untwinned = inputs.filter((p) => p.endsWith('.ts') && !p.endsWith('.browser.ts') && existsSync(join(ROOT, p.replace(/\.ts$/, '.browser.ts'))));
    expect(untwinned).toEqual([]);
    const twins = inputs.filter((p) => p.endsWith('.browser.ts')).map((p) => p.replace(/^.*src\//, 'src/'));
    expect(twins).toEqual(expect.arrayContaining(['src/platform/env.browser.ts', 'src/platform/gpu.browser.ts', 'src/platform/files.browser.ts', 'src/platform/gc.browser.ts', 'src/platform/threads.browser.ts']));
    // nor a stray global of Node's that a page lacks
    const code = readFileSync(join(tmp, 'dist/browser/index.js'), 'utf8');
    expect(code.match(/\bprocess\.\w+|\brequire\(|__dirname|__filename/g) ?? []).toEqual([]);
    // nothing left for the page to import at run time
    for (const out of Object.values(report.metafile.outputs)) expect(out.imports.filter((i) => i.external)).toEqual([]);
    // third-party code in the bundle: only magic-string and its codec
    const packages = new Set(inputs.filter((p) => p.includes('node_modules/')).map((p) => p.replace(/^.*node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1')));
    expect([...packages].sort()).toEqual(['@jridgewell/sourcemap-codec', 'magic-string']);
  });

  it('a Node-only import in the browser graph fails the build, naming the importer and the fix', async () => {
    const entry = join(tmp, 'uses-fs.ts');
    writeFileSync(entry, "import { readFileSync } from 'node:fs';\nexport const read = readFileSync;\n");
    const err = await esbuild.build(browserOptions({ entryPoints: [entry], write: false, logLevel: 'silent' })).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toContain("Node-only module 'node:fs' imported by");
    expect((err as Error).message).toContain('src/platform/');
    const dawn = join(tmp, 'uses-dawn.ts');
    writeFileSync(dawn, "export const load = () => import('webgpu');\n");
    const err2 = await esbuild.build(browserOptions({ entryPoints: [dawn], write: false, logLevel: 'silent' })).catch((e: Error) => e);
    expect((err2 as Error).message).toContain("Node-only module 'webgpu'");
  });

  it('prints the size and keeps the gzipped bundle under budget', () => {
    expect(lines.join('\n')).toMatch(/dist\/browser\/index\.js: [\d.]+ KiB \(minified [\d.]+ KiB, gzip [\d.]+ KiB; budget [\d.]+ KiB gzip\)/);
    expect(report.gzipBytes).toBeGreaterThan(10_000);
    expect(report.gzipBytes).toBeLessThanOrEqual(GZIP_BUDGET_BYTES);
    expect(report.minBytes).toBeLessThan(report.rawBytes);
  });

  it('the browser bundle runs without Dawn and without files: cpu tensors train as from source, WebGPU says it is absent, save/load take bytes', async () => {
    const torch = (await import(pathToFileURL(join(tmp, 'dist/browser/index.js')).href)) as typeof import('../src/index.ts');
    // Node has no navigator.gpu: the browser build must not reach for Dawn instead
    expect(await torch.webgpu.isAvailable()).toBe(false);
    torch.manualSeed(0);
    const w = torch.randn([4, 3], { requiresGrad: true });
    const x = torch.randn(8, 4);
    const loss = torch.mm(x, w).relu().sum();
    loss.backward();
    const src = await import('../src/index.ts');
    src.manualSeed(0);
    const w2 = src.randn([4, 3], { requiresGrad: true });
    const loss2 = src.mm(src.randn(8, 4), w2).relu().sum();
    loss2.backward();
    expect(await loss.item()).toBe(await loss2.item());
    expect(Array.from(await w.grad!.toArray())).toEqual(Array.from(await w2.grad!.toArray()));

    // torch.save/torch.load take bytes; a path says why not and what to do instead
    const bytes = torch.save({ w: w.detach(), g: w.grad! });
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Array.from(await torch.load(bytes).w!.toArray())).toEqual(Array.from(await w.toArray()));
    expect(() => torch.save({ w: w.detach() }, 'w.safetensors')).toThrow(/browser has no file system.*Fix: pass bytes/s);
    expect(() => torch.load('w.safetensors')).toThrow(/browser has no file system.*Fix: pass bytes/s);
  });

  it('the Node bundle imports Dawn lazily and its dependencies stay imports; the declarations name the WebGPU types', () => {
    const nodeJs = readFileSync(join(tmp, 'dist/node/index.js'), 'utf8');
    expect(nodeJs).toContain('import("webgpu")');
    expect(nodeJs).toMatch(/from "magic-string"/);
    expect(readFileSync(join(tmp, 'dist/browser/index.js'), 'utf8')).not.toContain('import("webgpu")');
    const dts = readFileSync(join(tmp, 'dist/types/index.d.ts'), 'utf8');
    expect(dts.startsWith('/// <reference types="@webgpu/types" />')).toBe(true);
    expect(dts).toContain("export { Tensor } from './eager/tensor.ts'");
    expect(existsSync(join(tmp, 'dist/types/compile/compiled-graph.d.ts'))).toBe(true);
  });
});
