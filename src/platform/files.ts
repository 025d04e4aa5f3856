/** Files in Node: the tuner's cache file, `dump` folders, safetensors paths. The browser twin has none. */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { envVar, processId } from './env.ts';

export const hasFiles = true;

export function joinPath(...parts: string[]): string {
  return join(...parts);
}

/** $WGTORCH_CACHE_DIR, else ($XDG_CACHE_HOME or ~/.cache)/wgtorch. */
export function cacheDir(): string | null {
  const own = envVar('WGTORCH_CACHE_DIR');
  if (own) return own;
  return join(envVar('XDG_CACHE_HOME') || join(homedir(), '.cache'), 'wgtorch');
}

/** The file's text, or null when it cannot be read (not there yet). */
export function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Writes a temp file, then renames it, so readers never see half a file. Throws on failure, leaving no temp file. */
export function writeTextAtomic(file: string, text: string): void {
  const tmp = `${file}.${processId()}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Writes each named text into `dir` (created as needed). */
export function writeFiles(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
}

export function readBytes(file: string): Uint8Array {
  const b = readFileSync(file);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function writeBytes(file: string, bytes: Uint8Array): void {
  writeFileSync(file, bytes);
}
