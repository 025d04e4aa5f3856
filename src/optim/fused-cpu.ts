/**
 * Eager optimizer updates on the cpu as one loop per parameter, instead of a dozen tensor ops
 * each with its own pass over memory and its own result array (the seed's Adam step spent
 * more time there than in its matmuls). The loop reproduces the op-by-op path bit for bit:
 * every intermediate is rounded to float32 where that path stores it (Math.fround), and
 * scalars enter as the same doubles. Only plain eager execution takes it: while a tracer
 * records (torch.compile, torch.trace) or a compiled call may be undone, and for anything but
 * float32 cpu tensors with their own storage, the caller runs the tensor ops.
 */
import { tracing } from '../eager/dispatch.ts';
import type { Tensor } from '../eager/tensor.ts';
import { undoActive } from '../eager/undo.ts';
import { CpuStorage } from '../runtime/cpu/backend.ts';

let enabled = true;

/** Turns the fused loops off (tests compare them with the tensor ops). */
export function setFusedCpuUpdates(on: boolean): void {
  enabled = on;
}

/** The float32 arrays of tensors that may be updated in one loop, or null. */
function cpuArrays(ts: Tensor[]): Float32Array[] | null {
  if (!enabled || tracing.recorder || undoActive()) return null;
  const n = ts[0].numel();
  const out: Float32Array[] = [];
  for (const t of ts) {
    const s = t._storage;
    if (!(s instanceof CpuStorage) || s.pending || t.dtype !== 'float32' || t.numel() !== n || !(s.data instanceof Float32Array) || s.data.length < n) return null;
    // distinct storages: the loop reads and writes element j of each in one go
    if (out.includes(s.data)) return null;
    out.push(s.data);
  }
  return out;
}

export interface AdamStep {
  lr: number;
  b1: number;
  b2: number;
  eps: number;
  weightDecay: number;
  /** AdamW: p *= 1 - lr * wd first (else the decay is added to the gradient) */
  decoupled: boolean;
  maximize: boolean;
  /** bias corrections 1 - b1^t and 1 - b2^t */
  bc1: number;
  bc2: number;
}

/**
 * Adam / AdamW (amsgrad when `maxSq` is given) on cpu tensors, as src/optim/adam.ts computes
 * it op by op; returns false (nothing written) where the tensor ops must run instead.
 */
export function fusedAdamCpu(p: Tensor, grad: Tensor, expAvg: Tensor, expAvgSq: Tensor, maxSq: Tensor | null, o: AdamStep): boolean {
  const arrs = cpuArrays(maxSq ? [p, grad, expAvg, expAvgSq, maxSq] : [p, grad, expAvg, expAvgSq]);
  if (!arrs) return false;
  const [P, G, M, V] = arrs;
  const X = maxSq ? arrs[4] : null;
  const n = p.numel();
  const f = Math.fround;
  const { b1, b2, eps, weightDecay: wd, maximize } = o;
  const a1 = 1 - b1, a2 = 1 - b2, sb2 = Math.sqrt(o.bc2), step = o.lr / o.bc1;
  const decoupled = wd !== 0 && o.decoupled, addDecay = wd !== 0 && !o.decoupled;
  const decay = 1 - o.lr * wd;
  for (let j = 0; j < n; j++) {
    let pj = P[j];
    let d = maximize ? -G[j] : G[j];
    if (decoupled) pj = f(pj * decay);
    else if (addDecay) d = f(d + f(pj * wd));
    const m = f(f(M[j] * b1) + f(d * a1));
    const v = f(f(V[j] * b2) + f(f(d * d) * a2));
    M[j] = m;
    V[j] = v;
    let second = v;
    if (X) {
      // mx.max(v) is mx.where(mx.ge(v), v)
      const x = X[j];
      second = x >= v ? x : v;
      X[j] = second;
    }
    const denom = f(f(f(Math.sqrt(second)) / sb2) + eps);
    P[j] = f(pj - f(f(m / denom) * step));
  }
  // the versions the in-place ops would have left (autograd's saved-tensor checks read them)
  if (decoupled) p._storage.version++;
  p._storage.version++;
  expAvg._storage.version += 2;
  expAvgSq._storage.version += 2;
  if (maxSq) maxSq._storage.version++;
  return true;
}
