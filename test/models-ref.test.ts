/** The models.json formula helpers reproduce the recorded inputs and parameters bit for bit. */
import { describe, expect, it } from 'vitest';
import { models, opsTensors, paramInit, wave, weightsLike } from './helpers/models-ref.ts';

describe('models-ref', () => {
  it('wave reproduces the recorded op inputs exactly', () => {
    expect(Array.from(wave([3, 4], 0))).toEqual(opsTensors.A.values);
    expect(Array.from(wave([2, 3, 4], 3))).toEqual(opsTensors.Q.values);
    expect(Array.from(wave([3, 2, 3, 3], 8, 0.3))).toEqual(opsTensors.Wc.values);
    expect(Array.from(wave([3], 9, 0.1))).toEqual(opsTensors.Bc.values);
    expect(Array.from(wave([4], 14, 0.1))).toEqual(opsTensors.Bl.values);
  });

  it('paramInit gives the gpt parameter stats models.py would start from', () => {
    // AdamW moves every parameter, so check the init rule against a hand-computed case instead:
    // a Linear(16,48) weight has fan_in 16, its bias amp 0.1, a LayerNorm weight is 1 + wave*0.1.
    const names: string[] = models.gpt.param_names;
    const i = names.indexOf('block.attn.weight');
    expect(Array.from(paramInit('block.attn.weight', [48, 16], i))).toEqual(Array.from(wave([48, 16], 100 + i, 0.25)));
    const b = names.indexOf('block.attn.bias');
    expect(Array.from(paramInit('block.attn.bias', [48], b))).toEqual(Array.from(wave([48], 100 + b, 0.1)));
    const ln = names.indexOf('block.ln1.weight');
    const w = paramInit('block.ln1.weight', [16], ln);
    const base = wave([16], 100 + ln, 0.1);
    expect(Array.from(w)).toEqual(Array.from(base, (v) => Math.fround(1 + v)));
    expect(Array.from(paramInit('ln_f.bias', [16], 15))).toEqual(Array.from(wave([16], 115, 0.1)));
  });

  it('weightsLike is 1 + 0.1*(flat % 7)', () => {
    expect(Array.from(weightsLike(8))).toEqual([1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1].map(Math.fround));
  });
});
