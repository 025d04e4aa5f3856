import { WgtorchError } from '../ir/errors.ts';

/** Unknown option names are a typo more often than not: say so instead of ignoring them. */
export function checkOptions(op: string, opts: object | undefined | null, allowed: readonly string[]): void {
  if (!opts) return;
  for (const k of Object.keys(opts)) {
    if (!allowed.includes(k)) {
      throw new WgtorchError(
        `${op}: unknown option '${k}'. Fix: use one of ${allowed.map((a) => `'${a}'`).join(', ')}.`,
      );
    }
  }
}
