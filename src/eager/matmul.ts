/**
 * matmul and bmm semantics in one place: PyTorch's rank rules (1-D operands promoted,
 * leading dims are broadcast batch dims), the errors, and the batched primitive they reach,
 * `bmm` (src/ir/registry.ts): one or two batch dims, broadcast ones read with stride 0,
 * so no operand is expanded and no [..., M, K, N] product is formed.
 */
import { WgtorchError } from '../ir/errors.ts';
import { broadcastShapes, fmtShape } from '../ir/shape.ts';
import type { Tensor } from './tensor.ts';

/**
 * [..., M, K] @ [..., K, N] with broadcast batch dims. The primitive takes one or two batch
 * dims as they are (views stay views); more are merged where both operands agree on which
 * of them broadcasts, and expanded as a last resort.
 */
export function batchedMatmul(a: Tensor, b: Tensor): Tensor {
  const r = Math.max(a.dim(), b.dim());
  const lift = (t: Tensor) => (t.dim() === r ? t : t.reshape([...new Array<number>(r - t.dim()).fill(1), ...t.shape]));
  let x = lift(a);
  let y = lift(b);
  if (r <= 4) return x._bmm(y);
  const [M, K] = x.shape.slice(-2);
  const N = y.shape[r - 1];
  const batch = broadcastShapes('matmul (batch dims)', x.shape.slice(0, -2), y.shape.slice(0, -2));
  // runs of batch dims where the same operand (or neither) broadcasts fold into one dim
  const kind = (i: number) => (batch[i] === 1 ? null : x.shape[i] === 1 ? 'a' : y.shape[i] === 1 ? 'b' : 'both');
  const groups: { size: number; kind: string | null }[] = [];
  batch.forEach((n, i) => {
    const k = kind(i);
    const last = groups[groups.length - 1];
    if (last && (k === null || last.kind === k || last.kind === null)) {
      last.size *= n;
      last.kind ??= k;
    } else groups.push({ size: n, kind: k });
  });
  if (groups.length > 2) {
    // three alternating patterns: read both operands over the whole batch
    x = x.expand([...batch, M, K]);
    y = y.expand([...batch, K, N]);
    const B = batch.reduce((p, n) => p * n, 1);
    return x.reshape([B, M, K])._bmm(y.reshape([B, K, N])).reshape([...batch, M, N]);
  }
  const sizes = (t: 'a' | 'b') => groups.map((gr) => (gr.kind === t ? 1 : gr.size));
  const out = x.reshape([...sizes('a'), M, K])._bmm(y.reshape([...sizes('b'), K, N]));
  return out.reshape([...batch, M, N]);
}

/** matmul with PyTorch's rank rules: 1-D operands are promoted, leading dims are batch dims. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const ra = a.dim();
  const rb = b.dim();
  if (ra === 0 || rb === 0) {
    throw new WgtorchError(`matmul: both arguments need at least 1 dimension, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.`);
  }
  if (ra === 1 && rb === 1) {
    if (a.shape[0] !== b.shape[0]) {
      throw new WgtorchError(`matmul: inconsistent tensor size, expected tensor [${a.shape[0]}] and src [${b.shape[0]}] to have the same number of elements.`);
    }
    return a.mul(b).sum();
  }
  if (ra === 1) return matmul(a.unsqueeze(0), b).squeeze(-2);
  if (rb === 1) return matmul(a, b.unsqueeze(1)).squeeze(-1);
  if (ra === 2 && rb === 2) return a.mm(b);
  const [M, K] = a.shape.slice(-2);
  const [K2, N] = b.shape.slice(-2);
  if (K !== K2) {
    throw new WgtorchError(
      `matmul: mat1 and mat2 shapes cannot be multiplied (${M}x${K} and ${K2}x${N}) for operands ${fmtShape(a.shape)} and ${fmtShape(b.shape)}.` +
        ` Fix: the last dim of the first operand (${K}) must equal the second-to-last dim of the second (${K2}); transpose(-2, -1) one operand if it is stored the other way round.`,
    );
  }
  if (rb === 2) {
    // (..., M, K) @ (K, N): fold the batch into M
    return a.reshape([-1, K]).mm(b).reshape([...a.shape.slice(0, -1), N]);
  }
  // the batch dims must broadcast (PyTorch's message names them)
  broadcastShapes('matmul (batch dims)', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return batchedMatmul(a, b);
}

/** bmm: [B, M, K] @ [B, K, N], no broadcasting (PyTorch's strict form). */
export function bmm(a: Tensor, b: Tensor): Tensor {
  if (a.dim() !== 3 || b.dim() !== 3) {
    throw new WgtorchError(
      `bmm: batch1 must be a 3D tensor and batch2 must be a 3D tensor, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}. Fix: use matmul for other ranks (it broadcasts batch dims).`,
    );
  }
  const [B, M, K] = a.shape;
  const [B2, K2, N] = b.shape;
  if (B !== B2) {
    throw new WgtorchError(`bmm: batch1 and batch2 must have the same batch size, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)} (${B} vs ${B2}). Fix: use matmul to broadcast a batch of 1.`);
  }
  if (K !== K2) {
    throw new WgtorchError(
      `bmm: Expected size for first two dimensions of batch2 tensor to be: [${B}, ${K}] but got: [${B2}, ${K2}] (shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}). Fix: transpose(1, 2) the second operand if it is stored the other way round.`,
    );
  }
  if (a.dtype !== 'float32' || b.dtype !== 'float32') {
    throw new WgtorchError(`bmm: expected float32 operands, got ${a.dtype} and ${b.dtype}. Fix: convert with .float().`);
  }
  void M;
  void N;
  return a._bmm(b);
}
