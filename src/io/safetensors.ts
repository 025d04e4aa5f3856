/**
 * The safetensors format (Hugging Face), as bytes: an 8-byte little-endian header length N,
 * N bytes of JSON header `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }`
 * (offsets into the data after the header), then the raw little-endian data. Pure functions
 * over Uint8Array, no files: this module runs in browsers too (src/platform/files.ts adds paths in Node).
 */
import type { DType, HostArray } from '../ir/dtype.ts';
import { WgtorchError } from '../ir/errors.ts';

export interface RawTensor {
  dtype: DType;
  shape: number[];
  data: HostArray;
}

/** Bytes per element of every safetensors dtype; those wgtorch has no type for convert on load. */
const SIZES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};
const WRITE: Record<DType, string> = { float32: 'F32', int32: 'I32', bool: 'BOOL' };
const MAX_HEADER = 100_000_000;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encodes named tensors (in the order given) into one safetensors file's bytes. */
export function encodeSafetensors(tensors: [string, RawTensor][] | Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const list = Array.isArray(tensors) ? tensors : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new WgtorchError(`safetensors: metadata values must be strings, got ${typeof v} for '${k}'.`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of list) {
    if (name === '__metadata__') throw new WgtorchError("safetensors: '__metadata__' is reserved and cannot name a tensor.");
    if (name in header) throw new WgtorchError(`safetensors: the name '${name}' appears twice.`);
    const bytes = t.data.byteLength === 0 ? 0 : t.shape.reduce((p, d) => p * d, 1) * t.data.BYTES_PER_ELEMENT;
    if (bytes !== t.data.byteLength) {
      throw new WgtorchError(`safetensors: '${name}' has shape [${t.shape.join(', ')}] but ${t.data.length} values.`);
    }
    header[name] = { dtype: WRITE[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // pad with spaces so the data starts 8-byte aligned, as the reference writer does
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const [, t] of list) {
    out.set(leBytes(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Decodes safetensors bytes into named tensors (in file order) and the metadata. */
export function decodeSafetensors(bytes: Uint8Array): { tensors: [string, RawTensor][]; metadata: Record<string, string> | null } {
  if (!(bytes instanceof Uint8Array)) throw new WgtorchError(`safetensors: expected bytes (a Uint8Array), got ${typeof bytes}.`);
  if (bytes.length < 8) throw new WgtorchError(`safetensors: ${bytes.length} bytes is too short for a header (8 bytes of length first). Is this a safetensors file?`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > bytes.length) {
    throw new WgtorchError(`safetensors: the header claims ${n} bytes but the file has ${bytes.length}; it is truncated or not a safetensors file.`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new WgtorchError(`safetensors: the header is not valid UTF-8 JSON (${(e as Error).message}).`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new WgtorchError('safetensors: the header must be a JSON object.');
  const data = bytes.subarray(8 + n);
  const metadata = (header.__metadata__ as Record<string, string> | undefined) ?? null;
  const entries: [string, { dtype: string; shape: number[]; data_offsets: [number, number] }][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = info as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const ok =
      e && typeof e.dtype === 'string' && Array.isArray(e.shape) && e.shape.every((d) => Number.isInteger(d) && d >= 0) &&
      Array.isArray(e.data_offsets) && e.data_offsets.length === 2 && e.data_offsets.every((d) => Number.isInteger(d) && d >= 0);
    if (!ok) throw new WgtorchError(`safetensors: the entry for '${name}' needs dtype, shape and data_offsets [begin, end], got ${JSON.stringify(info)}.`);
    entries.push([name, e as never]);
  }
  const tensors: [string, RawTensor][] = [];
  for (const [name, e] of entries) {
    const size = SIZES[e.dtype];
    if (size === undefined) throw new WgtorchError(`safetensors: '${name}' has dtype ${e.dtype}, which wgtorch cannot read (it reads ${Object.keys(SIZES).join(', ')}).`);
    const [begin, end] = e.data_offsets;
    const count = e.shape.reduce((p, d) => p * d, 1);
    if (end < begin || end > data.length || end - begin !== count * size) {
      throw new WgtorchError(
        `safetensors: '${name}' (${e.dtype} [${e.shape.join(', ')}], ${count * size} bytes) has data_offsets [${begin}, ${end}] that do not fit the ${data.length} data bytes.`,
      );
    }
    tensors.push([name, convert(name, e.dtype, e.shape, data.subarray(begin, end), count)]);
  }
  return { tensors, metadata };
}

/** The data as little-endian bytes (a copy, so the result owns its buffer). */
function leBytes(a: HostArray): Uint8Array {
  const b = new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
  if (!littleEndian && a.BYTES_PER_ELEMENT > 1) swap(b, a.BYTES_PER_ELEMENT);
  return b;
}
function swap(b: Uint8Array, size: number): void {
  for (let i = 0; i < b.length; i += size) b.subarray(i, i + size).reverse();
}

function convert(name: string, dtype: string, shape: number[], raw: Uint8Array, count: number): RawTensor {
  const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const floats = (get: (i: number) => number) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = get(i);
    return { dtype: 'float32' as const, shape, data: out };
  };
  const ints = (get: (i: number) => number | bigint) => {
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const x = get(i);
      const n = typeof x === 'bigint' ? Number(x) : x;
      if (n < -2147483648 || n > 2147483647) {
        throw new WgtorchError(`safetensors: '${name}' (${dtype}) holds ${x} at element ${i}, outside int32, wgtorch's integer type.`);
      }
      out[i] = n;
    }
    return { dtype: 'int32' as const, shape, data: out };
  };
  switch (dtype) {
    case 'F32': return floats((i) => v.getFloat32(i * 4, true));
    case 'F64': return floats((i) => v.getFloat64(i * 8, true));
    case 'F16': return floats((i) => halfToFloat(v.getUint16(i * 2, true)));
    case 'BF16': return floats((i) => new Float32Array(new Uint32Array([v.getUint16(i * 2, true) << 16]).buffer)[0]);
    case 'I64': return ints((i) => v.getBigInt64(i * 8, true));
    case 'U64': return ints((i) => v.getBigUint64(i * 8, true));
    case 'I32': return ints((i) => v.getInt32(i * 4, true));
    case 'U32': return ints((i) => v.getUint32(i * 4, true));
    case 'I16': return ints((i) => v.getInt16(i * 2, true));
    case 'U16': return ints((i) => v.getUint16(i * 2, true));
    case 'I8': return ints((i) => v.getInt8(i));
    case 'U8': return ints((i) => v.getUint8(i));
    case 'BOOL': {
      const out = new Uint8Array(count);
      for (let i = 0; i < count; i++) out[i] = raw[i] ? 1 : 0;
      return { dtype: 'bool', shape, data: out };
    }
  }
  throw new WgtorchError(`safetensors: unknown dtype ${dtype} for '${name}'.`);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
