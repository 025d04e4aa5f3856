/** Browsers have no environment variables: options and torch.setLogs choose instead. */
export function envVar(_name: string): string | undefined {
  return undefined;
}

export function processId(): number {
  return 0;
}
