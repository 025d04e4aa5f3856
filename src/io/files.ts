/** Node-only: reading and writing whole files for torch.save / torch.load (the one module of src/io that touches node:fs). */
import { readFileSync, writeFileSync } from 'node:fs';

export function readBytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}
export function writeBytes(path: string, bytes: Uint8Array): void {
  writeFileSync(path, bytes);
}
