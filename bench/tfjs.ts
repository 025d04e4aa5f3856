// TensorFlow.js 4.22 rows: the same MLP, loss and optimizer with the cpu
// (pure JS), wasm (single-threaded SIMD) and webgpu backends. Each step is
// optimizer.minimize(f, true) (gradients and the Adam update, tidied), then
// `await loss.data()`, as a tfjs training loop reads its loss.
//
// Node specifics, found by running it:
// - gradients: see loadCore().
// - wasm: the .wasm files ship in the npm package; setWasmPaths points at its
//   dist/ folder. The threaded build does not start in Node (emscripten spawns
//   its pthread workers from a blob: URL, which node's Worker rejects), so the
//   backend runs its single-threaded SIMD build.
// - webgpu: the backend only registers itself when navigator.gpu exists at
//   import time, and Node 20 has no navigator. We register it ourselves with
//   wgtorch's own Dawn GPUDevice, so both frameworks run on the same device.

import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Runner, Workload } from './harness.ts';

type TF = typeof import('@tensorflow/tfjs-core');
export type TfBackend = 'cpu' | 'wasm' | 'webgpu';

let tfPromise: Promise<TF> | null = null;
const ready = new Map<TfBackend, Promise<void>>();

function loadCore(): Promise<TF> {
  tfPromise ??= import('@tensorflow/tfjs-core').then((tf) => {
    // tfjs-core's Node bundle has no gradients: the union package @tensorflow/tfjs
    // imports them from dist/register_all_gradients, an ES-module tree that Node
    // cannot load as is (directory imports); required through tsx's CJS
    // transform it registers into the same global registries and engine.
    createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients');
    // Production mode: no correctness checks and no warnings (such as the cpu
    // backend's advice to install tfjs-node), as a deployed app would run.
    tf.enableProdMode();
    return tf;
  });
  return tfPromise;
}

/** Where the Dawn device comes from for the webgpu backend (wgtorch's, to share it). */
export interface SharedDevice {
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
}

async function setUp(b: TfBackend, shared: () => Promise<SharedDevice>): Promise<void> {
  const tf = await loadCore();
  if (b === 'cpu') {
    await import('@tensorflow/tfjs-backend-cpu');
  } else if (b === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = resolve(fileURLToPath(import.meta.url), '../../node_modules/@tensorflow/tfjs-backend-wasm/dist') + '/';
    wasm.setWasmPaths(dist);
  } else {
    const { gpu, adapter, device } = await shared();
    // The backend's constructor checks navigator.gpu; keep the GPU object referenced there.
    const g = globalThis as { navigator?: { gpu?: GPU } };
    if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    else if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 3);
  }
  if (!(await tf.setBackend(b))) throw new Error(`tf.setBackend('${b}') returned false`);
  await tf.ready();
}

/** Loads and selects a backend; throws with the reason when it cannot. */
export async function useBackend(b: TfBackend, shared: () => Promise<SharedDevice>): Promise<TF> {
  const tf = await loadCore();
  let p = ready.get(b);
  if (!p) {
    p = setUp(b, shared);
    ready.set(b, p);
  }
  await p;
  if (tf.getBackend() !== b && !(await tf.setBackend(b))) throw new Error(`tf.setBackend('${b}') failed`);
  return tf;
}

/** What the wasm backend runs with (SIMD / threads), for the report. */
export async function wasmFeatures(): Promise<string> {
  const tf = await loadCore();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return `SIMD ${simd ? 'on' : 'off'}, threads ${threads ? 'on' : 'off'}`;
}

export async function tfjsRunner(w: Workload, b: TfBackend, shared: () => Promise<SharedDevice>): Promise<Runner> {
  const tf = await useBackend(b, shared);
  const before = tf.memory().numTensors;
  // nn.Linear's default init, U(-1/sqrt(in), 1/sqrt(in)) for weight and bias; weights as [in, out] as tf.layers.dense keeps them.
  let seed = 1;
  const uniform = (shape: number[], fanIn: number) => {
    const k = 1 / Math.sqrt(fanIn);
    const init = tf.randomUniform(shape, -k, k, 'float32', seed++);
    const v = tf.variable(init);
    init.dispose();
    return v;
  };
  const w1 = uniform([w.Din, w.H], w.Din);
  const b1 = uniform([w.H], w.Din);
  const w2 = uniform([w.H, w.Dout], w.H);
  const b2 = uniform([w.Dout], w.H);
  const x = tf.randomNormal([w.N, w.Din], 0, 1, 'float32', 10);
  const y = tf.randomNormal([w.N, w.Dout], 0, 1, 'float32', 11);
  const vars = [w1, b1, w2, b2];
  const optimizer = tf.train.adam(1e-4);
  const lossFn = () => {
    const h = tf.relu(tf.add(tf.matMul(x, w1), b1));
    const yPred = tf.add(tf.matMul(h, w2), b2);
    return tf.sum(tf.square(tf.sub(yPred, y))) as import('@tensorflow/tfjs-core').Scalar;
  };
  return {
    async step() {
      const loss = optimizer.minimize(lossFn, true, vars)!;
      const v = (await loss.data())[0]!;
      loss.dispose();
      return v;
    },
    dispose() {
      optimizer.dispose();
      tf.dispose([w1, b1, w2, b2, x, y]);
      const leaked = tf.memory().numTensors - before;
      if (leaked > 0) console.warn(`tfjs-${b}: ${leaked} tensors left after the row`);
    },
  };
}
