/**
 * Helper threads for the cpu's Wasm matmul (src/runtime/cpu/wasm-gemm.ts). In Node it
 * starts `availableParallelism() - 1` worker_threads (WGTORCH_CPU_THREADS caps the total, 1 = this thread only), each instantiating the same Wasm module over the same
 * shared memory; a job is 13 i32 arguments in a SharedArrayBuffer, handed over and waited for
 * with Atomics (no messages, no copies). The browser twin (threads.browser.ts) has no helpers,
 * so every product runs on the calling thread; Web Workers could go behind the same interface.
 *
 * Workers start in the background: until they are up, products run on one thread.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, Worker } from 'node:worker_threads';
import { envVar } from './env.ts';


/** gemm's arguments: a, aI, aK, b, bK, bJ, c, M, K, N, j0, j1, work */
export type GemmArgs = [number, number, number, number, number, number, number, number, number, number, number, number, number];

export interface GemmHelpers {
  /** helpers started and waiting for work */
  ready(): number;
  /** runs jobs[i] on helper i while `own` runs here; returns when all are done */
  run(jobs: GemmArgs[], own: () => void): void;
}

const IDLE = 0, JOB = 1, DONE = 2;

// Runs in each worker (CommonJS eval): instantiate, then wait for jobs forever.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control } = workerData;
const gemm = new WebAssembly.Instance(module, { env: { mem: memory } }).exports.gemm;
const ctl = new Int32Array(control);
parentPort.postMessage('ready');
for (;;) {
  Atomics.wait(ctl, 0, ${IDLE});
  if (Atomics.load(ctl, 0) !== ${JOB}) continue;
  gemm(ctl[1], ctl[2], ctl[3], ctl[4], ctl[5], ctl[6], ctl[7], ctl[8], ctl[9], ctl[10], ctl[11], ctl[12], ctl[13]);
  Atomics.store(ctl, 0, ${DONE});
  Atomics.notify(ctl, 0);
}
`;

export function gemmHelpers(module: WebAssembly.Module, memory: WebAssembly.Memory): GemmHelpers | null {
  if (!isMainThread) return null;
  const cores = availableParallelism();
  const asked = Number(envVar('WGTORCH_CPU_THREADS'));
  const cap = asked > 0 ? Math.floor(asked) : cores;
  const count = Math.max(0, Math.min(cores, cap, 8) - 1);
  if (count === 0) return null;
  const helpers: { ctl: Int32Array; up: boolean }[] = [];
  for (let i = 0; i < count; i++) {
    const control = new SharedArrayBuffer(4 * 16);
    const h = { ctl: new Int32Array(control), up: false };
    helpers.push(h);
    try {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control } });
      w.once('message', () => (h.up = true));
      w.once('error', () => (h.up = false));
      w.unref();
    } catch {
      // no worker: that helper never comes up
    }
  }
  return {
    ready: () => {
      let n = 0;
      while (n < helpers.length && helpers[n].up) n++;
      return n;
    },
    run(jobs, own) {
      jobs.forEach((args, i) => {
        const { ctl } = helpers[i];
        ctl.set(args, 1);
        Atomics.store(ctl, 0, JOB);
        Atomics.notify(ctl, 0);
      });
      own();
      for (let i = 0; i < jobs.length; i++) {
        const { ctl } = helpers[i];
        while (Atomics.load(ctl, 0) !== DONE) Atomics.wait(ctl, 0, JOB);
        Atomics.store(ctl, 0, IDLE);
      }
    },
  };
}
