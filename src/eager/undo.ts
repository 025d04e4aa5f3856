/**
 * An undo log for the JavaScript state a traced call changes before its graph runs: the
 * `.grad` of leaves (a traced backward() sets them, zeroGrad() clears them), `.data` and
 * `requiresGrad` of tensors, and optimizer state (Adam's step count). torch.compile opens a
 * log around each call; if the call fails anywhere (tracing, compiling, running), it undoes
 * the log, so the user's tensors, gradients and optimizer state are as before the call.
 */
import { pendingChecks } from '../runtime/pending-checks.ts';

export type UndoLog = (() => void)[];

let active: UndoLog | null = null;
/**
 * While a device-side value check is pending (webgpu: flags read at the next readback),
 * every change is logged here too, eager ones included; if the check failed, the readback
 * that reports it undoes them, newest first. The device gates its own writes meanwhile
 * (src/runtime/webgpu/dispatch-gate.ts), so tensors, gradients and optimizer state are as
 * before the op whose check failed.
 */
let pending: UndoLog | null = null;
pendingChecks.armed = () => {
  pending ??= [];
};
pendingChecks.reported = (failed) => {
  const log = pending;
  pending = null;
  if (failed && log) for (let i = log.length - 1; i >= 0; i--) log[i]!();
};

/** Records how to undo a change about to be made (no-op outside a logged call and with no check pending). */
export function recordUndo(undo: () => void): void {
  (active ?? pending)?.push(undo);
}

export function undoActive(): boolean {
  return active !== null || pending !== null;
}

/** Runs fn with a fresh log; on a throw (or always, with `always`), undoes what fn changed, newest first. */
export function withUndo<R>(fn: () => R, opts: { always?: boolean } = {}): R {
  const prev = active;
  const log: UndoLog = [];
  active = log;
  let ok = false;
  try {
    const r = fn();
    ok = true;
    return r;
  } finally {
    active = prev;
    if (!ok || opts.always) for (let i = log.length - 1; i >= 0; i--) log[i]!();
    else if (prev) prev.push(...log); // an outer log undoes this one's changes too
    else if (pending && !opts.always) pending.push(...log); // and so does a failing device check
  }
}
