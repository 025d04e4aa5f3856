/**
 * `npm run build`: the package as ES modules in dist/.
 *
 *   dist/browser/index.js   one bundle for pages and bundlers: every src/X.ts with an
 *                           X.browser.ts twin becomes the twin, so no Node-only module
 *                           (Dawn, fs, v8, process) is in it; magic-string is bundled
 *   dist/node/index.js      the same source for Node, dependencies left as imports
 *   dist/types/             .d.ts declarations (tsc)
 *
 * and prints the browser bundle's size (raw, minified, minified+gzip), failing when the
 * gzipped size is over budget. `test/build.test.ts` checks the browser graph with the
 * metafile of the same build.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ENTRY = join(ROOT, 'src/index.ts');

/**
 * The minified, gzipped browser bundle may not grow past this: 62 KiB when it was set,
 * 87 KiB with issue #11's ops and layers and the cpu target's Wasm kernels, 131 KiB with the
 * cpu target's Wasm SIMD expression kernels and resident tensors (issue #10, ~4 KiB of it), 145 KiB
 * with the compiler work of issues #10 and #12 after that (the memory plan of compiled webgpu graphs,
 * re-traces checked against the previous graph, vec4 and subgroup kernel renderers, col2imAt and the
 * scatter/window/recompute fusion rules); a jump past it is worth a look (npx esbuild --analyze)
 * before raising it.
 */
export const GZIP_BUDGET_BYTES = 152 * 1024;

/** Modules that exist only in Node; importing one from the browser graph is a build error. */
export const NODE_ONLY = /^(node:|webgpu$|(fs|fs\/promises|path|os|v8|vm|url|util|crypto|module|worker_threads|child_process|zlib|stream|events|buffer|process)$)/;

/**
 * Resolves `./X.ts` to `./X.browser.ts` where that twin exists, and refuses Node-only
 * modules with the importer named, so a new Node-only import fails the build rather
 * than a page.
 */
export const browserTwins: esbuild.Plugin = {
  name: 'wgtorch-browser-twins',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      if (!target.endsWith('.ts') || target.endsWith('.browser.ts')) return undefined;
      const twin = `${target.slice(0, -3)}.browser.ts`;
      return existsSync(twin) ? { path: twin } : undefined;
    });
    build.onResolve({ filter: NODE_ONLY }, (args) => ({
      errors: [
        {
          text: `Node-only module '${args.path}' imported by ${relative(ROOT, args.importer)} in the browser build. Fix: move it behind a module in src/platform/ with a .browser.ts twin.`,
        },
      ],
    }));
  },
};

export function browserOptions(over: esbuild.BuildOptions = {}): esbuild.BuildOptions {
  return {
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    plugins: [browserTwins],
    logLevel: 'warning',
    ...over,
  };
}

export interface BuildReport {
  rawBytes: number;
  minBytes: number;
  gzipBytes: number;
  metafile: esbuild.Metafile;
}

export async function build(opts: { outDir?: string; quiet?: boolean; types?: boolean } = {}): Promise<BuildReport> {
  const out = opts.outDir ?? join(ROOT, 'dist');
  const say = opts.quiet ? () => {} : (line: string) => console.log(line);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  const browser = await esbuild.build(browserOptions({ outfile: join(out, 'browser/index.js'), sourcemap: true, metafile: true }));
  await esbuild.build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outfile: join(out, 'node/index.js'),
    sourcemap: true,
    logLevel: 'warning',
  });
  if (opts.types !== false) {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'scripts/tsconfig.types.json'), '--declarationDir', join(out, 'types')], { stdio: 'inherit' });
    // the public types mention GPUDevice and friends: point consumers at their declarations
    const index = join(out, 'types/index.d.ts');
    writeFileSync(index, `/// <reference types="@webgpu/types" />\n${readFileSync(index, 'utf8')}`);
  }

  const raw = readFileSync(join(out, 'browser/index.js'));
  const min = await esbuild.build(browserOptions({ write: false, minify: true }));
  const minified = min.outputFiles![0]!.contents;
  const gz = gzipSync(minified, { level: 9 });
  const report: BuildReport = { rawBytes: raw.byteLength, minBytes: minified.byteLength, gzipBytes: gz.byteLength, metafile: browser.metafile! };
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  say(`dist/browser/index.js: ${kib(report.rawBytes)} (minified ${kib(report.minBytes)}, gzip ${kib(report.gzipBytes)}; budget ${kib(GZIP_BUDGET_BYTES)} gzip)`);
  say(`dist/node/index.js, dist/types/: done`);
  if (report.gzipBytes > GZIP_BUDGET_BYTES) {
    throw new Error(`the browser bundle is ${kib(report.gzipBytes)} gzipped, over the ${kib(GZIP_BUDGET_BYTES)} budget in scripts/build.ts. Fix: find what grew (npx esbuild --analyze) or raise the budget on purpose.`);
  }
  return report;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  build().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
