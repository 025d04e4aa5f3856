/**
 * Listeners for value checks that run on a device and report later (webgpu's check flags,
 * read at the next readback). The eager layer registers here to keep an undo log of the
 * JavaScript state changed while a check is pending (gradients set, optimizer steps), and
 * to undo it if the check failed; the runtime knows no tensors or optimizers.
 */
export const pendingChecks: {
  /** a check was recorded while none was pending */
  armed: (() => void) | null;
  /** the flags were read: whether a check had failed */
  reported: ((failed: boolean) => void) | null;
} = { armed: null, reported: null };
