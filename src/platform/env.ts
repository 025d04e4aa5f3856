/** Environment variables in Node. The browser twin (env.browser.ts) has none. */
export function envVar(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

/** A number that differs between processes sharing a file system (temp file names). */
export function processId(): number {
  return typeof process !== 'undefined' ? process.pid : 0;
}

/** Where log lines go by default: stderr. */
export function writeLogLine(line: string): void {
  console.error(line);
}
