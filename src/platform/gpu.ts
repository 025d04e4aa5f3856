/**
 * The WebGPU entry point in Node: `navigator.gpu` where the runtime has one
 * (Deno, a Node with WebGPU), else Dawn from the npm package `webgpu`, whose
 * globals (GPUBufferUsage, ...) are installed once. Loaded lazily, so code
 * that never touches WebGPU never loads Dawn.
 */
export async function platformGPU(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  let mod: typeof import('webgpu');
  try {
    mod = await import('webgpu');
  } catch (e) {
    throw new Error(`WebGPU: the npm package 'webgpu' (Dawn for Node) failed to load (${(e as Error).message}); run npm install.`);
  }
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return mod.create([]);
}
