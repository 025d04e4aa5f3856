/**
 * torch.save / torch.load in the safetensors format: a state dict (Record<string, Tensor>) to
 * bytes or a file, and back to cpu tensors. Values are read from the host; tensors on a GPU
 * are read back first by saveAsync (their reads are asynchronous, as item() is).
 */
import { tensor } from '../eager/factories.ts';
import { Tensor } from '../eager/tensor.ts';
import { WgtorchError } from '../ir/errors.ts';
import { readBytes, writeBytes } from '../platform/files.ts';
import { decodeSafetensors, encodeSafetensors, type RawTensor } from './safetensors.ts';

export interface SaveOptions {
  /** string -> string pairs stored in the header's __metadata__ */
  metadata?: Record<string, string>;
}

function entriesOf(op: string, sd: Record<string, Tensor>): [string, Tensor][] {
  if (sd === null || typeof sd !== 'object' || sd instanceof Tensor) {
    throw new WgtorchError(`${op}: expected a Record<string, Tensor> such as model.stateDict(), got ${sd instanceof Tensor ? 'a Tensor' : typeof sd}. Fix: torch.save({ weight: t }, path).`);
  }
  const list = Object.entries(sd);
  for (const [k, v] of list) {
    if (!(v instanceof Tensor)) throw new WgtorchError(`${op}: '${k}' is a ${v === null ? 'null' : typeof v}, not a Tensor; a safetensors file holds tensors only.`);
  }
  return list;
}

function finish(bytes: Uint8Array, path?: string): Uint8Array | void {
  if (path === undefined) return bytes;
  if (typeof path !== 'string') throw new WgtorchError(`torch.save: the path must be a string, got ${typeof path}.`);
  writeBytes(path, bytes);
}

/**
 * Writes `stateDict` as safetensors to `path`, or returns the bytes when no path is given.
 * Synchronous, so every tensor must be on the cpu; for GPU tensors use `await torch.saveAsync`.
 */
export function save(stateDict: Record<string, Tensor>, path: string, opts?: SaveOptions): void;
export function save(stateDict: Record<string, Tensor>, path?: undefined, opts?: SaveOptions): Uint8Array;
export function save(stateDict: Record<string, Tensor>, path?: string, opts: SaveOptions = {}): Uint8Array | void {
  const list = entriesOf('torch.save', stateDict);
  const raw: [string, RawTensor][] = list.map(([k, t]) => {
    if (t.device !== 'cpu') {
      throw new WgtorchError(
        `torch.save: '${k}' is on ${t.device}, whose values can only be read asynchronously. Fix: await torch.saveAsync(stateDict${path ? ', path' : ''}), or move the model to the cpu first.`,
      );
    }
    return [k, { dtype: t.dtype, shape: [...t.shape], data: t.toArraySync() }];
  });
  return finish(encodeSafetensors(raw, opts.metadata), path);
}

/** save() for tensors on any device: reads their values back (asynchronously), then writes. */
export async function saveAsync(stateDict: Record<string, Tensor>, path: string, opts?: SaveOptions): Promise<void>;
export async function saveAsync(stateDict: Record<string, Tensor>, path?: undefined, opts?: SaveOptions): Promise<Uint8Array>;
export async function saveAsync(stateDict: Record<string, Tensor>, path?: string, opts: SaveOptions = {}): Promise<Uint8Array | void> {
  const list = entriesOf('torch.saveAsync', stateDict);
  const raw: [string, RawTensor][] = await Promise.all(
    list.map(async ([k, t]): Promise<[string, RawTensor]> => [k, { dtype: t.dtype, shape: [...t.shape], data: await t.toArray() }]),
  );
  return finish(encodeSafetensors(raw, opts.metadata), path);
}

/** Reads a safetensors file (a path in Node, or its bytes) into cpu tensors, in file order. */
export function load(source: string | Uint8Array | ArrayBuffer): Record<string, Tensor> {
  if (source && typeof (source as unknown as PromiseLike<unknown>).then === 'function') {
    throw new WgtorchError('torch.load: got a Promise. Fix: await it first: torch.load(await torch.saveAsync(stateDict)).');
  }
  let bytes: Uint8Array;
  if (typeof source === 'string') bytes = readBytes(source);
  else if (source instanceof Uint8Array) bytes = source;
  else if (source instanceof ArrayBuffer) bytes = new Uint8Array(source);
  else throw new WgtorchError(`torch.load: expected a path or the bytes of a safetensors file, got ${typeof source}.`);
  const out: Record<string, Tensor> = {};
  for (const [name, t] of decodeSafetensors(bytes).tensors) out[name] = tensor(t.data, { shape: t.shape, dtype: t.dtype, device: 'cpu' });
  return out;
}
