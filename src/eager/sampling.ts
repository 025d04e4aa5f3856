/**
 * multinomial(probs, numSamples, { replacement }): sampling on the tensor's own device,
 * with uniforms from the manualSeed generator, so nothing waits for a readback. Each draw
 * counts the categories whose cumulative weight is at most u * total (the inverse CDF); a
 * draw without replacement zeroes the chosen category before the next one.
 * Rows that are not a distribution (a negative, inf or NaN weight, or all zeros) raise
 * PyTorch's error where the values can be read now (a cpu tensor outside a trace); elsewhere
 * their samples are -1, which a value check on the result reports (on webgpu at the next
 * readback), so no plausible sample is ever returned.
 */
import { WgtorchError } from '../ir/errors.ts';
import { fmtShape } from '../ir/shape.ts';
import { checkIndex } from './checks.ts';
import { apply, tracing } from './dispatch.ts';
import { checkOptions } from './options.ts';
import { rand } from './factories.ts';
import { cat, triu } from './indexing.ts';
import { Tensor } from './tensor.ts';

export function multinomial(probs: Tensor, numSamples: number, opts: { replacement?: boolean } = {}): Tensor {
  checkOptions('multinomial', opts, ['replacement']);
  if (!(probs instanceof Tensor)) throw new WgtorchError(`multinomial: expected a Tensor of probabilities, got ${typeof probs}.`);
  if (probs.dim() < 1 || probs.dim() > 2) throw new WgtorchError(`multinomial: prob_dist must be 1 or 2 dim, got shape ${fmtShape(probs.shape)}.`);
  if (probs.dtype !== 'float32') throw new WgtorchError(`multinomial: expected a float32 probability tensor, got ${probs.dtype}. Fix: .float() it.`);
  if (!Number.isInteger(numSamples) || numSamples <= 0) throw new WgtorchError(`multinomial: cannot sample n_sample <= 0 samples (got ${numSamples}).`);
  const K = probs.shape[probs.dim() - 1];
  if (K === 0) throw new WgtorchError('multinomial: number of categories cannot be zero.');
  const replacement = opts.replacement ?? false;
  if (!replacement && numSamples > K) {
    throw new WgtorchError(`multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement (n_sample ${numSamples}, ${K} categories). Fix: pass { replacement: true }.`);
  }
  let p = (probs.dim() === 1 ? probs.unsqueeze(0) : probs).detach();
  const rows = p.shape[0];
  if (p.device === 'cpu' && !tracing.recorder?.records(p)) checkNow(p.toArraySync() as Float32Array, rows, K);
  const upper = triu(apply('full', [], { shape: [K, K], value: 1, dtype: 'float32' }, p.device));
  const invalid = p.lt(0).int().add(p.abs().lt(Infinity).eq(0).int()).sum(-1, true).gt(0);
  const draw = (q: Tensor, n: number): Tensor => {
    const cdf = q.mm(upper); // inclusive cumulative sums, [rows, K]
    const total = cdf.narrow(1, K - 1, 1); // [rows, 1]
    const u = rand([rows, n], { device: q.device }).mul(total).unsqueeze(-1); // [rows, n, 1]
    const count = cdf.unsqueeze(1).le(u).int().sum(-1); // [rows, n]
    // u * total may round up to total: stay inside the categories
    let idx = count.where(count.lt(K), K - 1);
    idx = idx.where(total.gt(0).int().mul(invalid.eq(0).int()).gt(0), -1);
    return idx;
  };
  let out: Tensor;
  if (replacement || numSamples === 1) out = draw(p, numSamples);
  else {
    const picks: Tensor[] = [];
    const cats = apply('arange', [], { start: 0, step: 1, n: K, dtype: 'int32' }, p.device).reshape([1, K]);
    for (let s = 0; s < numSamples; s++) {
      const one = draw(p, 1); // [rows, 1]
      picks.push(one);
      p = p.where(cats.ne(one), 0);
    }
    out = cat(picks, 1);
  }
  out = checkIndex(out, {
    op: 'multinomial', what: 'sample', lo: 0, hi: K, ignore: null, bounds: `for ${K} categories`,
    fix: 'every row of probabilities must be non-negative, finite and not all zero (a -1 marks such a row).',
  });
  return probs.dim() === 1 ? out.reshape([numSamples]) : out;
}

function checkNow(v: Float32Array, rows: number, K: number): void {
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const x = v[r * K + k];
      if (!(x >= 0) || x === Infinity) throw new WgtorchError(`multinomial: probability tensor contains either inf, nan or element < 0 (row ${r}, category ${k}: ${x}).`);
      sum += x;
    }
    if (sum <= 0) throw new WgtorchError(`multinomial: invalid multinomial distribution (sum of probabilities <= 0) in row ${r}.`);
  }
}
