/**
 * Helper threads for the cpu's Wasm matmul (src/runtime/cpu/wasm-gemm.ts). In Node it
 * starts `availableParallelism() - 1` worker_threads (WGTORCH_CPU_THREADS caps the total,
 * 1 = this thread only), each instantiating the same Wasm module over the same shared memory.
 * The browser twin (threads.browser.ts) has no helpers, so every product runs on the calling
 * thread; Web Workers could go behind the same interface.
 *
 * A product is cut into jobs (a kind and up to 13 i32 arguments each) in a SharedArrayBuffer; the caller
 * and the helpers claim chunks from one counter with Atomics, so the caller never waits for a
 * helper that the OS has not scheduled (on a busy machine it simply does all the chunks
 * itself); it waits only for chunks a helper has already claimed. The counter carries a
 * generation tag, so a late helper cannot claim a chunk of a newer product by mistake.
 *
 * Workers start in the background: until they are up, products run on one thread.
 */
import { availableParallelism } from 'node:os';
import { isMainThread, Worker } from 'node:worker_threads';
import { envVar } from './env.ts';

/**
 * One piece of a product: `[JOB_GEMM, ...gemm's arguments but the last]` or `[JOB_GEMM_NT,
 * ...gemmNT's arguments but the last]` (the executing thread adds its scratch) or
 * `[JOB_PACK, ...pack's arguments]` (codegen-cpu/wasm/gemm-module.ts).
 */
export type GemmJob = number[];
export const JOB_GEMM = 0;
export const JOB_PACK = 1;
export const JOB_GEMM_NT = 2;

export interface GemmHelpers {
  /** helpers started and waiting for work */
  ready(): number;
  /** helpers asked for (started or starting): scratch is reserved for each */
  readonly slots: number;
  /** runs every job, on this thread (`own`) and on whichever helpers claim them; returns when all are done */
  run(jobs: GemmJob[], own: (job: GemmJob) => void): void;
}

export const MAX_JOBS = 64;
const ARGS = 14;
// control words
const GEN = 0, COUNT = 1, NEXT = 2, DONE = 3, HEADER = 4;
/** how long a helper polls for the next product before it sleeps: a product's pack and compute
 * phases, and a step's matmuls, follow each other closer than a futex wake-up */
const SPIN_MS = 0.02;

// Runs in each worker (CommonJS eval): instantiate, then claim chunks whenever a generation starts.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { module, memory, control, work } = workerData;
const { gemm, gemmNT, pack } = new WebAssembly.Instance(module, { env: { mem: memory } }).exports;
const ctl = new Int32Array(control);
parentPort.postMessage('ready');
let seen = 0;
for (;;) {
  const until = performance.now() + ${SPIN_MS};
  while (Atomics.load(ctl, ${GEN}) === seen && performance.now() < until);
  Atomics.wait(ctl, ${GEN}, seen);
  const gen = Atomics.load(ctl, ${GEN});
  seen = gen;
  for (;;) {
    const v = Atomics.load(ctl, ${NEXT});
    if ((v >>> 16) !== gen) break;
    const i = v & 0xffff;
    if (i >= Atomics.load(ctl, ${COUNT})) break;
    if (Atomics.compareExchange(ctl, ${NEXT}, v, v + 1) !== v) continue;
    const o = ${HEADER} + i * ${ARGS};
    if (ctl[o] === ${JOB_PACK}) pack(ctl[o + 1], ctl[o + 2], ctl[o + 3], ctl[o + 4], ctl[o + 5], ctl[o + 6], ctl[o + 7], ctl[o + 8], ctl[o + 9]);
    else if (ctl[o] === ${JOB_GEMM_NT}) gemmNT(ctl[o + 1], ctl[o + 2], ctl[o + 3], ctl[o + 4], ctl[o + 5], ctl[o + 6], ctl[o + 7], ctl[o + 8], ctl[o + 9], ctl[o + 10], work);
    else gemm(ctl[o + 1], ctl[o + 2], ctl[o + 3], ctl[o + 4], ctl[o + 5], ctl[o + 6], ctl[o + 7], ctl[o + 8], ctl[o + 9], ctl[o + 10], ctl[o + 11], ctl[o + 12], ctl[o + 13], work);
    Atomics.add(ctl, ${DONE}, 1);
    Atomics.notify(ctl, ${DONE});
  }
}
`;

/** Starts the helpers; helper h uses the scratch at byte (h + 1) * workBytes (this thread's is at 0). */
export function gemmHelpers(module: WebAssembly.Module, memory: WebAssembly.Memory, workBytes: number): GemmHelpers | null {
  if (!isMainThread) return null;
  const cores = availableParallelism();
  const asked = Number(envVar('WGTORCH_CPU_THREADS'));
  const cap = asked > 0 ? Math.floor(asked) : cores;
  const count = Math.max(0, Math.min(cores, cap, 8) - 1);
  if (count === 0) return null;
  const control = new SharedArrayBuffer(4 * (HEADER + MAX_JOBS * ARGS));
  const ctl = new Int32Array(control);
  let up = 0;
  for (let h = 0; h < count; h++) {
    try {
      const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control, work: (h + 1) * workBytes } });
      w.once('message', () => up++);
      w.unref();
    } catch {
      // no worker: that helper never comes up
    }
  }
  let gen = 0;
  /** claims the next chunk of generation g, or -1 when none is left */
  const claim = (g: number) => {
    for (;;) {
      const v = Atomics.load(ctl, NEXT);
      const i = v & 0xffff;
      if (v >>> 16 !== g || i >= Atomics.load(ctl, COUNT)) return -1;
      if (Atomics.compareExchange(ctl, NEXT, v, v + 1) === v) return i;
    }
  };
  return {
    ready: () => up,
    slots: count,
    run(jobs, own) {
      if (jobs.length > MAX_JOBS) throw new Error(`internal error: ${jobs.length} matmul chunks exceed ${MAX_JOBS}`);
      gen = (gen % 0x7fff) + 1;
      jobs.forEach((args, i) => ctl.set(args, HEADER + i * ARGS));
      Atomics.store(ctl, COUNT, jobs.length);
      Atomics.store(ctl, DONE, 0);
      Atomics.store(ctl, NEXT, gen << 16); // opens the claims of this generation
      Atomics.store(ctl, GEN, gen);
      Atomics.notify(ctl, GEN);
      let mine = 0;
      for (let i = claim(gen); i >= 0; i = claim(gen)) {
        own(jobs[i]);
        mine++;
      }
      // only chunks a helper already claimed are left: wait for those
      for (let d = Atomics.load(ctl, DONE); d + mine < jobs.length; d = Atomics.load(ctl, DONE)) Atomics.wait(ctl, DONE, d);
    },
  };
}
