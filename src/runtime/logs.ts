/**
 * One registry of named log channels: WGTORCH_LOGS=graph,backward,fusion,kernels,wgsl,cache,recompiles,perf
 * in Node, or torch.setLogs({ fusion: true }) anywhere.
 */
import { envVar, writeLogLine } from '../platform/env.ts';

export const CHANNELS = ['graph', 'backward', 'fusion', 'kernels', 'wgsl', 'cache', 'recompiles', 'perf'] as const;
export type Channel = (typeof CHANNELS)[number];

const enabled = new Set<Channel>();
let sink: (channel: Channel, message: string) => void = (c, m) => writeLogLine(`[wgtorch:${c}] ${m}`);

function fromEnv(): void {
  const env = envVar('WGTORCH_LOGS');
  if (!env) return;
  for (const c of env.split(',').map((s) => s.trim())) {
    if (c === 'all') CHANNELS.forEach((x) => enabled.add(x));
    else if ((CHANNELS as readonly string[]).includes(c)) enabled.add(c as Channel);
  }
}
fromEnv();

/** Turns channels on or off; `sink` replaces where lines go (stderr in Node, console.info in a page, by default). */
export function setLogs(channels: Partial<Record<Channel, boolean>>, opts: { sink?: (channel: Channel, message: string) => void } = {}): void {
  for (const [c, on] of Object.entries(channels)) {
    if (!(CHANNELS as readonly string[]).includes(c)) {
      throw new Error(`setLogs: unknown channel '${c}'. Fix: use one of ${CHANNELS.join(', ')}.`);
    }
    if (on) enabled.add(c as Channel);
    else enabled.delete(c as Channel);
  }
  if (opts.sink) sink = opts.sink;
}

export function logEnabled(c: Channel): boolean {
  return enabled.has(c);
}

/** Logs lazily: the message is only built when the channel is on. */
export function log(c: Channel, message: string | (() => string)): void {
  if (enabled.has(c)) sink(c, typeof message === 'function' ? message() : message);
}
