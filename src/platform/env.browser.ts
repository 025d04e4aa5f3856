/** Browsers have no environment variables: options and torch.setLogs choose instead. */
export function envVar(_name: string): string | undefined {
  return undefined;
}

export function processId(): number {
  return 0;
}

/** Where log lines go by default: the devtools console, as information rather than errors. */
export function writeLogLine(line: string): void {
  console.info(line);
}
