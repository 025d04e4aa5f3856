/** The WebGPU entry point in a page: `navigator.gpu` (null where the browser has no WebGPU or the page is not a secure context). */
export async function platformGPU(): Promise<GPU | null> {
  return (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu ?? null;
}
