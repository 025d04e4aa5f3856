/** Whether ops record autograd history (PyTorch's grad mode). */
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

function withMode<R>(mode: boolean, fn: () => R): R {
  const prev = enabled;
  enabled = mode;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

/** Runs fn without recording history; returns what fn returns. (A promise returned by fn is not awaited inside the mode.) */
export function noGrad<R>(fn: () => R): R {
  return withMode(false, fn);
}

export function enableGrad<R>(fn: () => R): R {
  return withMode(true, fn);
}

export function setGradEnabled(mode: boolean): void {
  enabled = mode;
}
