/**
 * torch.save / torch.load in the safetensors format, checked against the format itself: a
 * reader written here from the specification (8-byte little-endian header length, JSON header
 * of dtype, shape and data_offsets, little-endian data) reads what torch.save writes, and
 * torch.load reads a file written here by hand, including dtypes wgtorch converts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as torch from '../src/index.ts';
import { testDevices } from './helpers/devices.ts';

const vals = (t: torch.Tensor) => Array.from(t.toArraySync() as ArrayLike<number>);
const dir = mkdtempSync(join(tmpdir(), 'wgtorch-st-'));

/** The spec's reader, independent of src/io. */
function specRead(bytes: Uint8Array) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8'));
  const base = 8 + n;
  const out: Record<string, { dtype: string; shape: number[]; values: number[] }> = {};
  for (const [k, e] of Object.entries<any>(header)) {
    if (k === '__metadata__') continue;
    const [b, end] = e.data_offsets;
    const values: number[] = [];
    const size = { F32: 4, I32: 4, BOOL: 1 }[e.dtype as 'F32'];
    for (let at = base + b; at < base + end; at += size) {
      values.push(e.dtype === 'F32' ? dv.getFloat32(at, true) : e.dtype === 'I32' ? dv.getInt32(at, true) : dv.getUint8(at));
    }
    out[k] = { dtype: e.dtype, shape: e.shape, values };
  }
  return { n, header, out };
}

/** The spec's writer: entries as [name, dtype, shape, bytes of little-endian data]. */
function specWrite(entries: [string, string, number[], Uint8Array][], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  let off = 0;
  for (const [k, dtype, shape, data] of entries) {
    header[k] = { dtype, shape, data_offsets: [off, off + data.length] };
    off += data.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, , , data] of entries) {
    out.set(data, at);
    at += data.length;
  }
  return out;
}
const le = (size: number, n: number, put: (dv: DataView, i: number) => void) => {
  const b = new Uint8Array(size * n);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < n; i++) put(dv, i);
  return b;
};

describe('torch.save writes safetensors', () => {
  it('a state dict with float32, int32 and bool tensors: header, offsets and little-endian data as the spec says', () => {
    const sd = {
      'fc.weight': torch.tensor([[1.5, -2], [3.25, 1e-8]]),
      'bn.num_batches_tracked': torch.tensor(7, { dtype: 'int32' }),
      mask: torch.tensor([1, 0, 1]).gt(0),
      empty: torch.zeros(0, 3),
    };
    const path = join(dir, 'a.safetensors');
    const ret = torch.save(sd, path, { metadata: { format: 'pt' } });
    expect(ret).toBeUndefined();
    const bytes = new Uint8Array(readFileSync(path));
    const { n, header, out } = specRead(bytes);
    expect((8 + n) % 8, 'data starts 8-byte aligned').toBe(0);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(out['fc.weight']).toEqual({ dtype: 'F32', shape: [2, 2], values: [1.5, -2, 3.25, Math.fround(1e-8)] });
    expect(out['bn.num_batches_tracked']).toEqual({ dtype: 'I32', shape: [], values: [7] });
    expect(out.mask).toEqual({ dtype: 'BOOL', shape: [3], values: [1, 0, 1] });
    expect(out.empty).toEqual({ dtype: 'F32', shape: [0, 3], values: [] });
    // offsets tile the data exactly
    const spans = Object.entries<any>(header).filter(([k]) => k !== '__metadata__').map(([, e]) => e.data_offsets).sort((a, b) => a[0] - b[0]);
    spans.forEach((s, i) => expect(s[0]).toBe(i === 0 ? 0 : spans[i - 1][1]));
    expect(8 + n + spans.at(-1)[1]).toBe(bytes.length);
    // and the same bytes without a path, read back by torch.load
    const b2 = torch.save(sd, undefined, { metadata: { format: 'pt' } });
    expect(b2).toEqual(bytes);
    const back = torch.load(b2);
    expect(Object.keys(back)).toEqual(Object.keys(sd));
    expect(vals(back['fc.weight'])).toEqual(vals(sd['fc.weight']));
    expect(back.mask.dtype).toBe('bool');
    expect(back['bn.num_batches_tracked'].shape).toEqual([]);
  });

  it('torch.load reads a file written by hand: F32, I32, BOOL, and F64/I64/F16/BF16/U8 converted', () => {
    const path = join(dir, 'hand.safetensors');
    writeFileSync(path, specWrite([
      ['w', 'F32', [2, 3], le(4, 6, (dv, i) => dv.setFloat32(i * 4, i - 2.5, true))],
      ['idx', 'I32', [3], le(4, 3, (dv, i) => dv.setInt32(i * 4, -i, true))],
      ['m', 'BOOL', [2], new Uint8Array([0, 1])],
      ['d', 'F64', [2], le(8, 2, (dv, i) => dv.setFloat64(i * 8, 0.1 * (i + 1), true))],
      ['n', 'I64', [], le(8, 1, (dv) => dv.setBigInt64(0, 42n, true))],
      ['h', 'F16', [2], le(2, 2, (dv, i) => dv.setUint16(i * 2, [0x3c00, 0xc000][i], true))],
      ['bf', 'BF16', [1], le(2, 1, (dv) => dv.setUint16(0, 0x3f80, true))],
      ['u', 'U8', [2], new Uint8Array([200, 3])],
    ], { source: 'hand' }));
    const sd = torch.load(path);
    expect(vals(sd.w)).toEqual([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5]);
    expect(sd.w.shape).toEqual([2, 3]);
    expect(sd.w.device).toBe('cpu');
    expect(sd.idx.dtype).toBe('int32');
    expect(vals(sd.idx)).toEqual([0, -1, -2]);
    expect(sd.m.dtype).toBe('bool');
    expect(vals(sd.d)).toEqual([Math.fround(0.1), Math.fround(0.2)]);
    expect(sd.n.dtype).toBe('int32');
    expect(vals(sd.n)).toEqual([42]);
    expect(vals(sd.h)).toEqual([1, -2]);
    expect(vals(sd.bf)).toEqual([1]);
    expect(vals(sd.u)).toEqual([200, 3]);
  });

  it('corrupt files and bad arguments fail with what is wrong', () => {
    expect(() => torch.load(new Uint8Array(4))).toThrow(/too short for a header/);
    const ok = torch.save({ a: torch.ones(4) });
    expect(() => torch.load(ok.subarray(0, ok.length - 1))).toThrow(/'a' \(F32 \[4\], 16 bytes\) has data_offsets \[0, 16\] that do not fit the 15 data bytes/);
    const big = specWrite([['x', 'I64', [1], le(8, 1, (dv) => dv.setBigInt64(0, 2n ** 40n, true))]]);
    expect(() => torch.load(big)).toThrow(/outside int32/);
    expect(() => torch.load(specWrite([['x', 'C64', [1], new Uint8Array(8)]]))).toThrow(/dtype C64, which wgtorch cannot read/);
    expect(() => torch.save({ a: 3 } as never)).toThrow(/'a' is a number, not a Tensor/);
    expect(() => torch.load(Promise.resolve(ok) as never)).toThrow(/got a Promise/);
  });

  it.each(testDevices())('a model state dict round-trips into a fresh model on %s (saveAsync for device tensors)', async (device) => {
    torch.manualSeed(5);
    const make = () => new torch.nn.Sequential(new torch.nn.Linear(3, 4), new torch.nn.BatchNorm1d(4), new torch.nn.Linear(4, 2)).to(device);
    const a = make();
    a(torch.randn(8, 3).to(device)); // moves the running statistics
    const path = join(dir, `model-${device}.safetensors`);
    if (device === 'cpu') torch.save(a.stateDict(), path);
    else {
      expect(() => torch.save(a.stateDict(), path)).toThrow(/is on webgpu.*Fix: await torch.saveAsync/);
      await torch.saveAsync(a.stateDict(), path);
    }
    const b = make();
    expect(b.loadStateDict(torch.load(path))).toEqual({ missingKeys: [], unexpectedKeys: [] });
    for (const [k, t] of Object.entries(a.stateDict())) expect(await b.stateDict()[k].toArray(), k).toEqual(await t.toArray());
    a.eval();
    b.eval();
    const x = torch.randn(5, 3).to(device);
    expect(await b(x).toArray()).toEqual(await a(x).toArray());
  });
});
