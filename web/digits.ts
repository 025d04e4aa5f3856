/**
 * The second tab: the digits CNN of examples/12-digits-cnn.ts (two Conv2d + BatchNorm2d +
 * ReLU + MaxPool2d blocks and a Linear classifier; SGD with momentum, StepLR) on the real
 * handwritten digits (data/digits.csv.gz, UCI / scikit-learn, see data/README.md), fetched
 * and un-gzipped by the page. The model is restated here because the example reads its
 * data with node:fs; the layers are the package's.
 */
import * as torch from 'wgtorch';

const nn = torch.nn;
const F = torch.nn.functional;

export class DigitsCNN extends nn.Module<[torch.Tensor], torch.Tensor> {
  conv1 = new nn.Conv2d(1, 16, 3, { padding: 1 }); // [N, 16, 8, 8]
  bn1 = new nn.BatchNorm2d(16);
  conv2 = new nn.Conv2d(16, 32, 3, { padding: 1 }); // [N, 32, 4, 4]
  bn2 = new nn.BatchNorm2d(32);
  pool = new nn.MaxPool2d(2);
  fc = new nn.Linear(32 * 2 * 2, 10);
  override forward(x: torch.Tensor): torch.Tensor {
    x = this.pool(F.relu(this.bn1(this.conv1(x)))); // [N, 16, 4, 4]
    x = this.pool(F.relu(this.bn2(this.conv2(x)))); // [N, 32, 2, 2]
    return this.fc(torch.flatten(x, 1));
  }
}

export interface Digits {
  /** [N, 64] pixels in [0, 1], row-major 8x8 */
  pixels: Float32Array;
  labels: Int32Array;
}

export async function fetchDigits(url = 'digits.csv.gz'): Promise<Digits> {
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`digits: could not fetch ${url} (${res.status})`);
  const text = await new Response(res.body.pipeThrough(new DecompressionStream('gzip'))).text();
  const rows = text.trim().split('\n');
  const pixels = new Float32Array(rows.length * 64);
  const labels = new Int32Array(rows.length);
  rows.forEach((line, i) => {
    const v = line.split(',').map(Number);
    for (let k = 0; k < 64; k++) pixels[i * 64 + k] = v[k]! / 16;
    labels[i] = v[64]!;
  });
  return { pixels, labels };
}

export interface DigitsRun {
  device: torch.Device;
  /** training loss of every batch */
  losses: number[];
  /** held-out accuracy after each epoch */
  accuracies: number[];
  msPerBatch: number;
  /** the first test images, their labels and the trained model's predictions */
  samples: { pixels: number[]; label: number; predicted: number }[];
}

/** The example's training loop: an 80/20 split by manualSeed(0), batches of 64, shuffled. */
export async function trainDigits(
  data: Digits,
  opts: { device: torch.Device; epochs: number; maxBatches?: number; onBatch?: (loss: number) => Promise<void> | void; onEpoch?: (acc: number) => void; stop?: () => boolean },
): Promise<DigitsRun> {
  const { device } = opts;
  torch.manualSeed(0);
  const N = data.labels.length;
  const images = torch.tensor(data.pixels, { shape: [N, 1, 8, 8] });
  const labels = torch.tensor(data.labels, { dtype: 'int32' });
  const order = torch.randperm(N);
  const nTrain = Math.round(0.8 * N);
  const trainIdx = order.narrow(0, 0, nTrain);
  const testIdx = order.narrow(0, nTrain, N - nTrain);
  const trainSet = new torch.utils.data.TensorDataset(images.indexSelect(0, trainIdx), labels.indexSelect(0, trainIdx));
  const testSet = new torch.utils.data.TensorDataset(images.indexSelect(0, testIdx), labels.indexSelect(0, testIdx));
  const trainLoader = new torch.utils.data.DataLoader(trainSet, { batchSize: 64, shuffle: true });
  const testLoader = new torch.utils.data.DataLoader(testSet, { batchSize: 256 });
  const testLabels = Array.from(testSet.tensors[1]!.toArraySync());

  const model = new DigitsCNN().to(device);
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const scheduler = new torch.optim.lrScheduler.StepLR(optimizer, { stepSize: 3, gamma: 0.5 });
  const predict = async () => {
    model.eval();
    const out: number[] = [];
    for (const [x] of testLoader) out.push(...(await torch.noGrad(() => model(x!.to(device))).argmax(1).toArray()));
    model.train();
    return out;
  };

  const losses: number[] = [];
  const accuracies: number[] = [];
  let batches = 0;
  const t0 = performance.now();
  for (let epoch = 0; epoch < opts.epochs && !opts.stop?.(); epoch++) {
    for (const [x, y] of trainLoader) {
      if (opts.stop?.() || (opts.maxBatches !== undefined && batches >= opts.maxBatches)) break;
      const loss = F.crossEntropy(model(x!.to(device)), y!.to(device));
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      const value = await loss.item();
      losses.push(value);
      batches++;
      await opts.onBatch?.(value);
    }
    scheduler.step();
    const pred = await predict();
    const acc = pred.filter((p, i) => p === testLabels[i]).length / pred.length;
    accuracies.push(acc);
    opts.onEpoch?.(acc);
  }
  const msPerBatch = (performance.now() - t0) / Math.max(1, batches);
  const pred = await predict();
  const testPixels = testSet.tensors[0]!.toArraySync();
  const samples = Array.from({ length: 16 }, (_, i) => ({ pixels: Array.from(testPixels.subarray(i * 64, i * 64 + 64)), label: testLabels[i]!, predicted: pred[i]! }));
  return { device, losses, accuracies, msPerBatch, samples };
}
