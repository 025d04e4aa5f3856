// jax-js 0.1.25's row for the character GPT (bench/models.ts's GPT): the same
// architecture (token + position embeddings, pre-LayerNorm blocks with causal
// multi-head attention and an exact-GELU MLP, final LayerNorm, a bias-free head),
// cross entropy over B*T, clipGradNorm_(1.0) and PyTorch's AdamW (betas 0.9, 0.95, as the
// example) written in jax-js ops, the whole step
// as ONE jit. Weights come from a small LCG (N(0, 0.02)-like; LayerNorm 1 and 0),
// so the losses differ from wgtorch's rows, not the work. See bench/jaxjs.ts for
// the Node specifics (navigator shim, one Wasm thread). Reference counting: a jitted
// call consumes its arguments and every op consumes its operands, so each value read
// twice is read through `.ref` once.

import type { Runner } from './harness.ts';
import type { GptConfig } from './models.ts';
import { adamUpdate, useBackend, type JaxBackend } from './jaxjs.ts';
import type { SharedDevice } from './tfjs.ts';

type Arr = import('@jax-js/jax').Array;
type Params = Record<string, Arr>;

function lcgNormal(n: number, std: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  for (let i = 0; i < n; i++) out[i] = std * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

export async function jaxjsGptRunner(cfg: GptConfig, b: JaxBackend, shared: () => Promise<SharedDevice>): Promise<Runner> {
  const jax = await useBackend(b, shared);
  const { numpy: np, nn, jit, valueAndGrad, tree } = jax;
  const { vocab: V, context: T, width: C, heads: H, layers: L, batch: B } = cfg;
  const hd = C / H;
  let seed = 1;
  const w = (...shape: number[]) => np.array(lcgNormal(shape.reduce((a, x) => a * x, 1), 0.02, seed++)).reshape(shape);
  const shapes: Record<string, number[]> = {};
  let p: Params = {};
  const put = (name: string, a: Arr) => {
    p[name] = a;
    shapes[name] = a.shape as number[];
  };
  put('wte', w(V, C));
  put('wpe', w(T, C));
  for (let l = 0; l < L; l++) {
    put(`${l}.ln1w`, np.ones([C]));
    put(`${l}.ln1b`, np.zeros([C]));
    put(`${l}.qkvW`, w(C, 3 * C));
    put(`${l}.qkvB`, np.zeros([3 * C]));
    put(`${l}.projW`, w(C, C));
    put(`${l}.projB`, np.zeros([C]));
    put(`${l}.ln2w`, np.ones([C]));
    put(`${l}.ln2b`, np.zeros([C]));
    put(`${l}.fcW`, w(C, 4 * C));
    put(`${l}.fcB`, np.zeros([4 * C]));
    put(`${l}.fc2W`, w(4 * C, C));
    put(`${l}.fc2B`, np.zeros([C]));
  }
  put('lnfw', np.ones([C]));
  put('lnfb', np.zeros([C]));
  put('head', w(C, V));
  const keys = Object.keys(p);
  const zeros = (): Params => Object.fromEntries(keys.map((k) => [k, np.zeros(shapes[k]!)]));
  let m = zeros();
  let v = zeros();

  // the same pseudo-random tokens as bench/models.ts's gptBatch
  const n = B * (T + 1);
  const toks: number[] = [];
  let s = 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    toks.push(s % V);
  }
  const idxData = new Int32Array(B * T);
  const tgtData = new Float32Array(B * T * V);
  for (let bi = 0; bi < B; bi++) {
    for (let t = 0; t < T; t++) {
      idxData[bi * T + t] = toks[bi * (T + 1) + t]!;
      tgtData[(bi * T + t) * V + toks[bi * (T + 1) + t + 1]!] = 1;
    }
  }
  // one-hot rows: the embedding lookup as a matmul (jax-js has take, but its gradient is what the matmul gives for free)
  const idxOneHot = nn.oneHot(np.array(idxData, { dtype: np.int32 }).reshape([B, T]), V).astype(np.float32);
  const targets = np.array(tgtData).reshape([B * T, V]);
  const mask = np.tril(np.ones([T, T])).equal(0);
  const [lr, beta1, beta2, eps, wd] = [3e-3, 0.9, 0.95, 1e-8, 0.1];

  const layerNorm = (x: Arr, g: Arr, bias: Arr) => nn.standardize(x, -1, { epsilon: 1e-5 }).mul(g).add(bias);
  const linear = (x: Arr, W: Arr, bias?: Arr) => (bias ? np.matmul(x, W).add(bias) : np.matmul(x, W));
  const heads = (t: Arr) => t.reshape([B, T, H, hd]).transpose([0, 2, 1, 3]);
  const lossOf = (q: Params, oh: Arr, tg: Arr, mk: Arr) => {
    let x = np.matmul(oh, q.wte!).add(q.wpe!); // [B, T, C]
    for (let l = 0; l < L; l++) {
      const at = (k: string) => q[`${l}.${k}`]!;
      const qkv = linear(layerNorm(x.ref, at('ln1w'), at('ln1b')), at('qkvW'), at('qkvB'));
      const [qh, kh, vh] = np.split(qkv, 3, 2).map(heads) as [Arr, Arr, Arr];
      let att = np.matmul(qh, kh.transpose([0, 1, 3, 2])).mul(1 / Math.sqrt(hd));
      att = nn.softmax(np.where(mk.ref, -Infinity, att), -1);
      const y = np.matmul(att, vh).transpose([0, 2, 1, 3]).reshape([B, T, C]);
      x = x.add(linear(y, at('projW'), at('projB')));
      const hdn = nn.gelu(linear(layerNorm(x.ref, at('ln2w'), at('ln2b')), at('fcW'), at('fcB')), { approximate: false });
      x = x.add(linear(hdn, at('fc2W'), at('fc2B')));
    }
    const logits = linear(layerNorm(x, q.lnfw!, q.lnfb!), q.head!).reshape([B * T, V]);
    mk.dispose();
    return nn.logSoftmax(logits, -1).mul(tg).sum().mul(-1 / (B * T));
  };
  const step = jit((q: Params, mq: Params, vq: Params, stepSize: Arr, sqrtBc2: Arr, oh: Arr, tg: Arr, mk: Arr) => {
    const [loss, g] = valueAndGrad(lossOf)(tree.ref(q), oh, tg, mk) as [Arr, Params];
    // clipGradNorm_(1.0): every gradient times min(1, 1 / (total norm + 1e-6))
    let sq: Arr | null = null;
    for (const k of keys) {
      const s2 = np.square(g[k]!.ref).sum();
      sq = sq ? sq.add(s2) : s2;
    }
    const coef = np.minimum(np.reciprocal(np.sqrt(sq!).add(1e-6)), 1);
    for (const k of keys) g[k] = g[k]!.mul(coef.ref);
    coef.dispose();
    const [np2, nm, nv] = adamUpdate(np, keys, q, g, mq, vq, stepSize, sqrtBc2, { beta1, beta2, eps, decay: lr * wd });
    return [loss, np2, nm, nv] as [Arr, Params, Params, Params];
  });
  let t = 0;
  return {
    async step() {
      t++;
      const stepSize = np.array(lr / (1 - beta1 ** t));
      const sqrtBc2 = np.array(Math.sqrt(1 - beta2 ** t));
      const [loss, np2, nm, nv] = step(p, m, v, stepSize, sqrtBc2, idxOneHot.ref, targets.ref, mask.ref) as [Arr, Params, Params, Params];
      p = np2;
      m = nm;
      v = nv;
      return (await loss.data())[0]!;
    },
    dispose() {
      tree.dispose([p, m, v, idxOneHot, targets, mask]);
      (step as unknown as { dispose?: () => void }).dispose?.();
    },
  };
}
