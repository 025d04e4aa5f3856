// jax-js 0.1.25 rows (@jax-js/jax, a devDependency of the bench only): the same MLP, MSE
// (sum) and Adam (PyTorch's update: lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)) written in
// jax-js ops, the whole step (value and gradient, the update of all four parameters and
// their moments) as ONE jit, on its Wasm and WebGPU backends. Each step reads the loss
// (`await loss.data()`): jax-js submits only when a value is read.
//
// Node specifics, found by running it:
// - its arrays are reference-counted: a jitted call consumes its arguments, so the step
//   takes the parameters and moments and returns the new ones (nothing leaks), and the
//   inputs x, y are passed as `.ref`;
// - webgpu: init('webgpu') reads navigator.gpu and navigator.userAgent; Node 20 has no
//   navigator, so both are set to wgtorch's Dawn GPU object (jax-js asks it for its own
//   adapter and device);
// - wasm: its worker pool needs a global Worker, which Node lacks, so it runs one thread.

import type { Runner, Workload } from './harness.ts';
import type { SharedDevice } from './tfjs.ts';

type Jax = typeof import('@jax-js/jax');
type Arr = import('@jax-js/jax').Array;
export type JaxBackend = 'wasm' | 'webgpu';

let jaxPromise: Promise<Jax> | null = null;
const ready = new Map<JaxBackend, Promise<void>>();

export async function useBackend(b: JaxBackend, shared: () => Promise<SharedDevice>): Promise<Jax> {
  jaxPromise ??= import('@jax-js/jax');
  const jax = await jaxPromise;
  let p = ready.get(b);
  if (!p) {
    p = (async () => {
      if (b === 'webgpu') {
        const { gpu } = await shared();
        const g = globalThis as { navigator?: { gpu?: GPU; userAgent?: string } };
        if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node' }, configurable: true, writable: true });
        else {
          if (!g.navigator.gpu) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
          if (!g.navigator.userAgent) Object.defineProperty(g.navigator, 'userAgent', { value: 'node', configurable: true });
        }
      }
      const got = await jax.init(b);
      if (!got.includes(b)) throw new Error(`jax-js init('${b}') did not start the backend (got ${JSON.stringify(got)})`);
    })();
    ready.set(b, p);
  }
  await p;
  jax.defaultDevice(b);
  return jax;
}

/** nn.Linear's default init, U(-1/sqrt(in), 1/sqrt(in)), from a small LCG (the values differ from the other rows'). */
function uniform(n: number, fanIn: number, seed: number): Float32Array {
  const k = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296) * 2 * k - k;
  }
  return out;
}

function normal(n: number, seed: number): Float32Array {
  const u = uniform(2 * n, 1, seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(Math.max(1e-12, (u[2 * i]! + 1) / 2))) * Math.cos(Math.PI * (u[2 * i + 1]! + 1));
  return out;
}

type Params = { w1: Arr; b1: Arr; w2: Arr; b2: Arr };
const KEYS = ['w1', 'b1', 'w2', 'b2'] as const;

/**
 * PyTorch's Adam update of every parameter `keys` names, inside a jit: new parameters and
 * moments from the gradients. stepSize is lr / bc1, sqrtBc2 sqrt(bc2) (both consumed);
 * `decay` (AdamW's lr * weightDecay) scales a parameter before its update. jaxjs-gpt.ts's
 * AdamW is this with a decay.
 */
export function adamUpdate<P extends Record<string, Arr>>(
  np: Jax['numpy'],
  keys: readonly (keyof P & string)[],
  q: P,
  g: P,
  mq: P,
  vq: P,
  stepSize: Arr,
  sqrtBc2: Arr,
  h: { beta1: number; beta2: number; eps: number; decay?: number },
): [P, P, P] {
  const np2: Record<string, Arr> = {};
  const nm: Record<string, Arr> = {};
  const nv: Record<string, Arr> = {};
  for (const k of keys) {
    const gk = g[k]!;
    const mk = mq[k]!.mul(h.beta1).add(gk.ref.mul(1 - h.beta1));
    const vk = vq[k]!.mul(h.beta2).add(np.square(gk).mul(1 - h.beta2));
    const denom = np.sqrt(vk.ref).div(sqrtBc2.ref).add(h.eps);
    const base = h.decay ? q[k]!.mul(1 - h.decay) : q[k]!;
    np2[k] = base.sub(mk.ref.div(denom).mul(stepSize.ref));
    nm[k] = mk;
    nv[k] = vk;
  }
  stepSize.dispose();
  sqrtBc2.dispose();
  return [np2 as P, nm as P, nv as P];
}

export async function jaxjsRunner(w: Workload, b: JaxBackend, shared: () => Promise<SharedDevice>): Promise<Runner> {
  const jax = await useBackend(b, shared);
  const { numpy: np, jit, valueAndGrad, tree } = jax;
  const arr = (data: Float32Array, shape: number[]) => np.array(data).reshape(shape);
  let p: Params = {
    w1: arr(uniform(w.Din * w.H, w.Din, 1), [w.Din, w.H]),
    b1: arr(uniform(w.H, w.Din, 2), [w.H]),
    w2: arr(uniform(w.H * w.Dout, w.H, 3), [w.H, w.Dout]),
    b2: arr(uniform(w.Dout, w.H, 4), [w.Dout]),
  };
  const zeros = (): Params => ({ w1: np.zeros([w.Din, w.H]), b1: np.zeros([w.H]), w2: np.zeros([w.H, w.Dout]), b2: np.zeros([w.Dout]) });
  let m = zeros();
  let v = zeros();
  const x = arr(normal(w.N * w.Din, 10), [w.N, w.Din]);
  const y = arr(normal(w.N * w.Dout, 11), [w.N, w.Dout]);
  const [lr, beta1, beta2, eps] = [1e-4, 0.9, 0.999, 1e-8];

  const lossOf = (q: Params, xs: Arr, ys: Arr) => {
    const h = np.maximum(np.matmul(xs, q.w1).add(q.b1), 0);
    const yp = np.matmul(h, q.w2).add(q.b2);
    return np.square(yp.sub(ys)).sum();
  };
  // the whole step, one jit: loss, gradients, Adam on every parameter
  const step = jit((q: Params, mq: Params, vq: Params, stepSize: Arr, sqrtBc2: Arr, xs: Arr, ys: Arr) => {
    const [loss, g] = valueAndGrad(lossOf)(tree.ref(q), xs, ys) as [Arr, Params];
    const [np2, nm, nv] = adamUpdate(np, KEYS, q, g, mq, vq, stepSize, sqrtBc2, { beta1, beta2, eps });
    return [loss, np2, nm, nv] as [Arr, Params, Params, Params];
  });
  let t = 0;
  return {
    async step() {
      t++;
      const stepSize = np.array(lr / (1 - beta1 ** t));
      const sqrtBc2 = np.array(Math.sqrt(1 - beta2 ** t));
      const [loss, np2, nm, nv] = step(p, m, v, stepSize, sqrtBc2, x.ref, y.ref) as [Arr, Params, Params, Params];
      p = np2;
      m = nm;
      v = nv;
      const value = (await loss.data())[0]!;
      return value;
    },
    dispose() {
      tree.dispose([p, m, v, x, y]);
      (step as unknown as { dispose?: () => void }).dispose?.();
    },
  };
}

export async function jaxjsVersion(): Promise<string> {
  try {
    const { readFileSync } = await import('node:fs');
    const { createRequire } = await import('node:module');
    const path = createRequire(import.meta.url).resolve('@jax-js/jax').replace(/dist\/index\.(c?js)$/, 'package.json');
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}
