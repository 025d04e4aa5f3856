/**
 * A small CNN on real handwritten digits (data/digits.csv.gz: 1797 8x8 images, UCI / scikit-learn,
 * see data/README.md): a shuffled train/test split, TensorDataset and a shuffling DataLoader,
 * two Conv2d + BatchNorm2d + ReLU + MaxPool2d blocks and a Linear classifier, cross entropy,
 * SGD with momentum and a StepLR schedule, test accuracy after every epoch; then the model is
 * saved with torch.save (safetensors) and reloaded into a fresh model that predicts the same.
 * `--steps N` sets the number of epochs (default 8).
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/index.ts';
import { breathe, isMain, ready, runMain, type ExampleOptions } from './_cli.ts';

const nn = torch.nn;
const F = torch.nn.functional;
const DATA = resolve(dirname(fileURLToPath(import.meta.url)), '../data/digits.csv.gz');

/** The digits as images [N, 1, 8, 8] scaled to [0, 1] and int32 labels [N]. */
export function loadDigits(): { images: torch.Tensor; labels: torch.Tensor } {
  const rows = gunzipSync(readFileSync(DATA)).toString('utf8').trim().split('\n');
  const pixels = new Float32Array(rows.length * 64);
  const labels = new Int32Array(rows.length);
  rows.forEach((line, i) => {
    const v = line.split(',').map(Number);
    for (let k = 0; k < 64; k++) pixels[i * 64 + k] = v[k] / 16;
    labels[i] = v[64];
  });
  return {
    images: torch.tensor(pixels, { shape: [rows.length, 1, 8, 8] }),
    labels: torch.tensor(labels, { dtype: 'int32' }),
  };
}

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

async function predict(model: torch.nn.Module, loader: torch.utils.data.DataLoader, device: torch.Device): Promise<number[]> {
  const out: number[] = [];
  for (const [x] of loader) {
    const logits = torch.noGrad(() => model(x.to(device)));
    out.push(...(await logits.argmax(1).toArray()));
  }
  return out;
}

export interface DigitsResult {
  /** mean training loss per epoch */
  losses: number[];
  /** held-out accuracy after each epoch */
  accuracies: number[];
  /** whether the reloaded model predicts exactly what the trained one does */
  reloadedSame: boolean;
  file: string;
}

export async function train(opts: ExampleOptions = {}): Promise<DigitsResult> {
  const log = opts.log ?? console.log;
  const device = opts.device ?? 'cpu';
  const epochs = opts.steps ?? 8;
  await ready(device);
  torch.manualSeed(0);

  // a shuffled 80/20 split of the 1797 images
  const { images, labels } = loadDigits();
  const order = torch.randperm(images.shape[0]);
  const nTrain = Math.round(0.8 * images.shape[0]);
  const trainIdx = order.narrow(0, 0, nTrain);
  const testIdx = order.narrow(0, nTrain, images.shape[0] - nTrain);
  const trainSet = new torch.utils.data.TensorDataset(images.indexSelect(0, trainIdx), labels.indexSelect(0, trainIdx));
  const testSet = new torch.utils.data.TensorDataset(images.indexSelect(0, testIdx), labels.indexSelect(0, testIdx));
  const trainLoader = new torch.utils.data.DataLoader(trainSet, { batchSize: 64, shuffle: true });
  const testLoader = new torch.utils.data.DataLoader(testSet, { batchSize: 256 });
  log(`${trainSet.length} training and ${testSet.length} test images`);

  const model = new DigitsCNN().to(device);
  const optimizer = new torch.optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const scheduler = new torch.optim.lrScheduler.StepLR(optimizer, { stepSize: 3, gamma: 0.5 });
  const testLabels = Array.from(testSet.tensors[1].toArraySync());

  const losses: number[] = [];
  const accuracies: number[] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    model.train();
    let sum = 0;
    let batches = 0;
    for (const [x, y] of trainLoader) {
      const loss = F.crossEntropy(model(x.to(device)), y.to(device));
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      sum += await loss.item();
      batches++;
      await breathe();
    }
    scheduler.step();
    model.eval();
    const pred = await predict(model, testLoader, device);
    const acc = pred.filter((p, i) => p === testLabels[i]).length / pred.length;
    losses.push(sum / batches);
    accuracies.push(acc);
    log(`epoch ${epoch}: train loss ${(sum / batches).toFixed(4)}, test accuracy ${(100 * acc).toFixed(1)}%, lr ${scheduler.getLastLr()[0]}`);
  }

  // save the parameters and BatchNorm's running statistics, then load them into a fresh model
  const file = join(mkdtempSync(join(tmpdir(), 'wgtorch-digits-')), 'digits-cnn.safetensors');
  if (device === 'cpu') torch.save(model.stateDict(), file);
  else await torch.saveAsync(model.stateDict(), file); // GPU values are read back asynchronously
  const fresh = new DigitsCNN();
  fresh.loadStateDict(torch.load(file));
  fresh.to(device).eval();
  const before = await predict(model, testLoader, device);
  const after = await predict(fresh, testLoader, device);
  const reloadedSame = before.every((p, i) => p === after[i]);
  log(`saved to ${file}; the reloaded model gives ${reloadedSame ? 'the same' : 'DIFFERENT'} predictions`);
  return { losses, accuracies, reloadedSame, file };
}

export async function main(opts: ExampleOptions = {}): Promise<number[]> {
  return (await train(opts)).losses;
}

if (isMain(import.meta.url)) runMain(main);
