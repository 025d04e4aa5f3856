/** A page has no file system: caches live in memory, dumps are skipped, and torch.save/torch.load take bytes. */
export const hasFiles = false;

const noFiles = (what: string) =>
  new Error(`${what}: a browser has no file system. Fix: pass bytes instead (torch.save(stateDict) returns a Uint8Array; torch.load(bytes) reads one).`);

export function joinPath(...parts: string[]): string {
  return parts.join('/');
}

export function cacheDir(): string | null {
  return null;
}

export function readText(_file: string): string | null {
  return null;
}

export function writeTextAtomic(file: string, _text: string): void {
  throw noFiles(`writing ${file}`);
}

export function writeFiles(dir: string, _files: Record<string, string>): void {
  throw noFiles(`writing to ${dir}`);
}

export function readBytes(file: string): Uint8Array {
  throw noFiles(`reading ${file}`);
}

export function writeBytes(file: string, _bytes: Uint8Array): void {
  throw noFiles(`writing ${file}`);
}
