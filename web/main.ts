/**
 * The demo page (`npm run web`): trains the seed's TwoLayerNet live on WebGPU (or on the
 * CPU where the browser has none), eager or compiled, with a loss plot, the time per step
 * and an inspector of the compiled step. `window.demo` lets the browser test drive it.
 */
import * as torch from 'wgtorch';
import { makeTrainer, SIZES, type Mode, type Trainer } from './train.ts';
import { LossPlot } from './plot.ts';
import { Inspector } from './inspector.ts';
import { fetchDigits, trainDigits, type Digits, type DigitsRun } from './digits.ts';

const $ = <T extends HTMLElement>(sel: string) => document.querySelector(sel) as T;

export interface TrainResult {
  mode: Mode;
  device: torch.Device;
  losses: number[];
  msPerStep: number;
  kernels: { name: string; nodes: number[] }[];
}

const COLORS: Record<Mode, string> = { eager: '#d9822b', compiled: '#2b6cd9' };
/** steps before the timing starts: they build GPU pipelines (and the compiled graph) */
const WARMUP = 5;

const plot = new LossPlot($<HTMLCanvasElement>('#plot'));
const inspector = new Inspector($('#inspector'));
let running = false;
let trained: Trainer | null = null;
let stopAsked = false;

async function pickDevice(): Promise<torch.Device> {
  const status = $('#device');
  if (await torch.webgpu.isAvailable()) {
    const info = torch.webgpu.context().adapterInfo;
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' · ');
    status.textContent = `WebGPU: ${name || 'adapter found'}`;
    status.className = 'ok';
    $<HTMLInputElement>('#device-webgpu').disabled = false;
    return 'webgpu';
  }
  status.textContent = 'This browser has no WebGPU (navigator.gpu): training on the CPU instead.';
  status.className = 'warn';
  $<HTMLInputElement>('#device-cpu').checked = true;
  return 'cpu';
}

const devicePromise = pickDevice();

/** Trains on `device` (default: the one the radio buttons pick; webgpu only where the browser has it). */
async function train(opts: { mode?: Mode; steps?: number; device?: torch.Device } = {}): Promise<TrainResult> {
  if (running) throw new Error('demo: a run is in progress');
  running = true;
  stopAsked = false;
  const mode = opts.mode ?? (($<HTMLInputElement>('#mode-compiled').checked ? 'compiled' : 'eager') as Mode);
  const steps = opts.steps ?? Number($<HTMLInputElement>('#steps').value);
  $<HTMLInputElement>(`#mode-${mode}`).checked = true;
  const button = $<HTMLButtonElement>('#train');
  button.disabled = true;
  $<HTMLButtonElement>('#stop').disabled = false;
  try {
    const best = await devicePromise;
    const device = opts.device ?? (($<HTMLInputElement>('#device-cpu').checked ? 'cpu' : best) as torch.Device);
    if (device === 'webgpu' && best !== 'webgpu') throw new Error('demo: this browser has no WebGPU');
    $<HTMLInputElement>(`#device-${device}`).checked = true;
    const trainer = makeTrainer(device, mode);
    trained = trainer;
    plot.clear(mode, COLORS[mode], mode === 'eager' ? [6, 4] : []);
    const losses: number[] = [];
    let t0 = performance.now();
    let msPerStep = NaN;
    let lastPaint = 0;
    for (let t = 0; t < steps && !stopAsked; t++) {
      if (t === WARMUP) t0 = performance.now();
      const loss = await trainer.step();
      losses.push(loss);
      plot.push(mode, loss);
      if (t >= WARMUP) msPerStep = (performance.now() - t0) / (t + 1 - WARMUP);
      if (t === 0 && trainer.compiled) inspector.show(trainer.compiled.graphs()[0]!);
      const now = performance.now();
      if (now - lastPaint > 50 || t === steps - 1) {
        lastPaint = now;
        plot.draw();
        $('#progress').textContent = `${mode} · step ${t + 1}/${steps} · loss ${loss.toExponential(4)}`;
        $('#ms').textContent = Number.isFinite(msPerStep) ? `${msPerStep.toFixed(2)} ms/step` : 'warming up…';
        $(`#ms-${mode}`).textContent = Number.isFinite(msPerStep) ? `${mode}: ${msPerStep.toFixed(2)} ms/step` : '';
        await new Promise((r) => setTimeout(r, 0)); // let the page paint
      }
    }
    $<HTMLButtonElement>('#save').disabled = false;
    const kernels = trainer.compiled?.graphs()[0]?.kernels.map((k) => ({ name: k.name, nodes: k.nodes })) ?? [];
    return { mode, device, losses, msPerStep, kernels };
  } finally {
    running = false;
    button.disabled = false;
    $<HTMLButtonElement>('#stop').disabled = true;
  }
}

$('#train').addEventListener('click', () => {
  train().catch(fail);
});
/**
 * The trained weights as a .safetensors file: torch.saveAsync reads the GPU tensors back
 * and returns the bytes (a page has no file system), and torch.load reads them again.
 */
async function saveWeights(opts: { download?: boolean } = {}): Promise<{ bytes: number; names: string[]; maxDiff: number }> {
  if (!trained) throw new Error('demo: train first');
  const state = trained.model.stateDict();
  const bytes = await torch.saveAsync(state);
  const loaded = torch.load(bytes);
  let maxDiff = 0;
  for (const [name, t] of Object.entries(state)) {
    const [a, b] = [await t.toArray(), await loaded[name]!.toArray()];
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
  }
  if (opts.download !== false) {
    const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
    const a = Object.assign(document.createElement('a'), { href: url, download: 'twolayernet.safetensors' });
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    $('#progress').textContent = `saved ${Object.keys(loaded).length} tensors (${(bytes.length / 1024).toFixed(0)} KiB of safetensors)`;
  }
  return { bytes: bytes.length, names: Object.keys(loaded), maxDiff };
}

$('#save').addEventListener('click', () => {
  saveWeights().catch(fail);
});
$('#stop').addEventListener('click', () => {
  stopAsked = true;
});
$('#sizes').textContent = `TwoLayerNet(${SIZES.D_in} → ${SIZES.H} → ${SIZES.D_out}), batch ${SIZES.N}, Adam lr 1e-4, MSE (sum)`;

function fail(e: unknown): void {
  const msg = e instanceof Error ? e.message : String(e);
  $('#progress').textContent = `error: ${msg}`;
  console.error(e);
}

// ---------------------------------------------------------------- the digits tab

for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('.tabs button'))) {
  b.addEventListener('click', () => {
    for (const o of Array.from(document.querySelectorAll<HTMLButtonElement>('.tabs button'))) o.classList.toggle('on', o === b);
    $('#tab-mlp').hidden = b.dataset.tab !== 'mlp';
    $('#tab-digits').hidden = b.dataset.tab !== 'digits';
  });
}
void devicePromise.then((d) => {
  if (d === 'webgpu') $<HTMLInputElement>('#digits-device-webgpu').disabled = false;
});

const digitsPlot = new LossPlot($<HTMLCanvasElement>('#digits-plot'));
let digitsData: Promise<Digits> | null = null;
let digitsStop = false;

/** Trains the digits CNN (eager); `maxBatches` cuts it short (the browser test). */
async function trainDigitsTab(opts: { device?: torch.Device; epochs?: number; maxBatches?: number } = {}): Promise<DigitsRun & { images: number }> {
  if (running) throw new Error('demo: a run is in progress');
  running = true;
  digitsStop = false;
  const button = $<HTMLButtonElement>('#digits-train');
  button.disabled = true;
  $<HTMLButtonElement>('#digits-stop').disabled = false;
  try {
    const best = await devicePromise;
    const device = opts.device ?? (($<HTMLInputElement>('#digits-device-webgpu').checked && best === 'webgpu' ? 'webgpu' : 'cpu') as torch.Device);
    $<HTMLInputElement>(`#digits-device-${device}`).checked = true;
    const epochs = opts.epochs ?? Number($<HTMLInputElement>('#digits-epochs').value);
    $('#digits-progress').textContent = 'loading the digits…';
    const data = await (digitsData ??= fetchDigits());
    digitsPlot.clear('train loss', '#7a3bd9');
    let batch = 0;
    let lastPaint = 0;
    const run = await trainDigits(data, {
      device,
      epochs,
      maxBatches: opts.maxBatches,
      stop: () => digitsStop,
      onBatch: async (loss) => {
        batch++;
        digitsPlot.push('train loss', loss);
        if (performance.now() - lastPaint > 100) {
          lastPaint = performance.now();
          digitsPlot.draw();
          $('#digits-progress').textContent = `${device} · batch ${batch} · loss ${loss.toFixed(4)}`;
          await new Promise((r) => setTimeout(r, 0));
        }
      },
      onEpoch: (acc) => {
        $('#digits-acc').textContent = `${(100 * acc).toFixed(1)}% held-out accuracy`;
      },
    });
    digitsPlot.draw();
    $('#digits-progress').textContent = `${device} · ${run.losses.length} batches · loss ${run.losses.at(-1)?.toFixed(4)}`;
    $('#digits-ms').textContent = `${run.msPerBatch.toFixed(1)} ms per batch (forward, backward, SGD)`;
    showSamples(run);
    return { ...run, images: data.labels.length };
  } finally {
    running = false;
    button.disabled = false;
    $<HTMLButtonElement>('#digits-stop').disabled = true;
  }
}

function showSamples(run: DigitsRun): void {
  const box = $('#digits-samples');
  box.replaceChildren(
    ...run.samples.map((s) => {
      const item = document.createElement('div');
      item.className = s.label === s.predicted ? 'sample' : 'sample wrong';
      const c = document.createElement('canvas');
      c.width = c.height = 8;
      const g = c.getContext('2d')!;
      const img = g.createImageData(8, 8);
      s.pixels.forEach((v, i) => {
        const shade = 255 - Math.round(v * 255);
        img.data.set([shade, shade, shade, 255], i * 4);
      });
      g.putImageData(img, 0, 0);
      item.append(c, `${s.label} → ${s.predicted}`);
      return item;
    }),
  );
}

$('#digits-train').addEventListener('click', () => {
  trainDigitsTab().catch((e) => {
    $('#digits-progress').textContent = `error: ${e instanceof Error ? e.message : String(e)}`;
    console.error(e);
  });
});
$('#digits-stop').addEventListener('click', () => {
  digitsStop = true;
});

/** Every numeric limit of the adapter and of the device wgtorch requested from it. */
function limits(): { adapter: Record<string, number>; device: Record<string, number> } {
  const ctx = torch.webgpu.context();
  const numeric = (l: GPUSupportedLimits) => {
    const out: Record<string, number> = {};
    for (const k in l) if (typeof (l as unknown as Record<string, unknown>)[k] === 'number') out[k] = (l as unknown as Record<string, number>)[k]!;
    return out;
  };
  return { adapter: numeric(ctx.adapter.limits), device: numeric(ctx.device.limits) };
}

declare global {
  interface Window {
    /** the package itself, for the devtools console: torch.randn(2, 3, { device: 'webgpu' }) */
    torch: typeof torch;
    demo: { device: Promise<torch.Device>; train: typeof train; limits: typeof limits; saveWeights: typeof saveWeights; trainDigits: typeof trainDigitsTab };
  }
}
window.demo = { device: devicePromise, train, limits, saveWeights, trainDigits: trainDigitsTab };
window.torch = torch;
