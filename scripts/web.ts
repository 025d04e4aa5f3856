/**
 * `npm run web`: builds the package (dist/), bundles the demo page in web/ against the
 * BUILT package (dist/browser/index.js: what a user's bundler would pick), and serves
 * the page on http://127.0.0.1:8080 (`-- --port N`; `-- --no-build` reuses dist/).
 * WebGPU needs a secure context, which 127.0.0.1 is.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { build, ROOT } from './build.ts';

const WEB = join(ROOT, 'web');

/** Bundles web/main.ts into `outDir`, with `wgtorch` resolved to `<distDir>/browser/index.js`. */
export async function buildWeb(opts: { distDir?: string; outDir?: string } = {}): Promise<string> {
  const distDir = opts.distDir ?? join(ROOT, 'dist');
  const outDir = opts.outDir ?? join(distDir, 'web');
  const pkg = join(distDir, 'browser/index.js');
  if (!existsSync(pkg)) throw new Error(`web: ${pkg} is missing. Fix: run npm run build first.`);
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [join(WEB, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: join(outDir, 'main.js'),
    sourcemap: true,
    logLevel: 'warning',
    plugins: [
      {
        name: 'built-wgtorch',
        setup(b) {
          b.onResolve({ filter: /^wgtorch$/ }, () => ({ path: pkg }));
        },
      },
    ],
  });
  for (const f of ['index.html', 'style.css']) copyFileSync(join(WEB, f), join(outDir, f));
  copyFileSync(join(ROOT, 'data/digits.csv.gz'), join(outDir, 'digits.csv.gz')); // the digits tab fetches it
  return outDir;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
};

/** A static file server for `dir` on 127.0.0.1 (port 0: any free port). Resolves once listening. */
export function serve(dir: string, port = 8080): Promise<{ server: Server; url: string }> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}`);
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(readFileSync(file));
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const a = server.address();
      ok({ server, url: `http://127.0.0.1:${typeof a === 'object' && a ? a.port : port}/` });
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const i = args.indexOf('--port');
  const port = i >= 0 ? Number(args[i + 1]) : 8080;
  if (!args.includes('--no-build')) await build();
  const dir = await buildWeb();
  const { url } = await serve(dir, port);
  console.log(`wgtorch demo: open ${url} in a browser with WebGPU (Ctrl-C stops)`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
