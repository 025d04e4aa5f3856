/** Every user-facing error of wgtorch. The message names the op, the shapes and the fix. */
export class WgtorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WgtorchError';
  }
}
