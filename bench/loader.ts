// Loader throughput: decoded + augmented images/s of the ImageNet folder loader (sharp decode, resize to
// 256, random 224 crop, flip, normalise) with N decode workers, on synthetic full-size JPEGs.
// Build and run:  npx tsc -p tsconfig.json && node dist/bench/loader.js --images 1024 --workers 2
// Pin to two cores with `taskset -c 0,1` on a bigger machine. Prints one JSON line per measurement.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DecodePool } from '../runtime/imagenet/decode-pool.js';
import { configureSharpForWorkers, decodeResized } from '../runtime/imagenet/decode.js';
import { cropToTensor, randomCrop } from '../runtime/imagenet/donkey.js';
import { listImageFolder } from '../runtime/imagenet/folder.js';
import { ImageFolderEvalSource, ImageNetTrainSource } from '../runtime/imagenet/sources.js';

const MEAN = [0.48462227599918, 0.45624044862054, 0.40588363755159];
const STD = [0.22889466674951, 0.22446679341259, 0.22495548344775];
/** ImageNet's common shapes: most training images are 500 on the long side, about 400×350 on average. */
const SHAPES: readonly [number, number][] = [[500, 375], [375, 500], [500, 333], [500, 400], [400, 400], [333, 500]];

/** Smooth colour fields plus noise: compresses like a photo (about 100 KB at quality 90), not like a flat test card. */
function photoLike(width: number, height: number, seed: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
  const fx = [rand() * 0.05, rand() * 0.05, rand() * 0.05];
  const fy = [rand() * 0.05, rand() * 0.05, rand() * 0.05];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 80 * Math.sin(x * fx[c] + y * fy[c] + c) + 40 * Math.sin((x * y) / 900 + c) + (rand() - 0.5) * 60;
        px[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, v));
      }
    }
  }
  return px;
}

async function makeFolder(root: string, images: number, classes: number): Promise<{ bytes: number }> {
  let bytes = 0;
  for (let i = 0; i < images; i++) {
    const dir = join(root, `n${String(i % classes).padStart(8, '0')}`);
    if (i < classes) mkdirSync(dir, { recursive: true });
    const [w, h] = SHAPES[i % SHAPES.length];
    const file = join(dir, `img_${i}.JPEG`);
    await sharp(photoLike(w, h, i + 1), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
    bytes += statSync(file).size;
  }
  return { bytes };
}

/** One image at a time on this thread: the cost per core of each stage, without any pool. */
async function perImageCost(files: readonly string[]): Promise<{ decodeResizeMs: number; cropNormaliseMs: number }> {
  configureSharpForWorkers();
  const crop = { channels: 3, width: 224, height: 224 };
  const sample = files.slice(0, 200);
  let t = performance.now();
  const decoded = [];
  for (const f of sample) decoded.push(await decodeResized(f, 256, 3));
  const decodeResizeMs = (performance.now() - t) / sample.length;
  const out = new Float32Array(3 * 224 * 224);
  t = performance.now();
  for (const img of decoded) cropToTensor(img.pixels, img, crop, randomCrop(img, crop, { uY: 0.3, uX: 0.6, uFlip: 0.7 }), { mean: MEAN, std: STD }, out);
  const cropNormaliseMs = (performance.now() - t) / decoded.length;
  return { decodeResizeMs: Number(decodeResizeMs.toFixed(2)), cropNormaliseMs: Number(cropNormaliseMs.toFixed(3)) };
}

function sizeOf(root: string): number {
  return listImageFolder(root).files.reduce((sum, f) => sum + statSync(f).size, 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '1024' },
      workers: { type: 'string', multiple: true },
      batch: { type: 'string', default: '128' },
      dir: { type: 'string' },
      depth: { type: 'string', default: '2' },
      keep: { type: 'boolean' },
    },
  });
  const images = Number(values.images);
  const batch = Number(values.batch);
  const workerCounts = (values.workers ?? ['1', '2']).map(Number);
  const root = values.dir ?? mkdtempSync(join(tmpdir(), 'nincc-loader-bench-'));
  const made = values.dir || values.keep ? undefined : root;
  try {
    const started = Date.now();
    const { bytes } = values.dir ? { bytes: sizeOf(root) } : await makeFolder(root, images, 10);
    const list = listImageFolder(root);
    process.stderr.write(`${list.files.length} JPEGs (${(bytes / list.files.length / 1024).toFixed(0)} KB each) in ${root}, made in ${((Date.now() - started) / 1000).toFixed(1)} s; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'})\n`);
    const cost = await perImageCost(list.files);
    process.stdout.write(JSON.stringify({ oneThread: cost, imagesPerSecondPerCore: Math.round(1000 / (cost.decodeResizeMs + cost.cropNormaliseMs)) }) + '\n');
    const crop = { channels: 3 as const, width: 224, height: 224 };
    for (const workers of workerCounts) {
      const pool = new DecodePool({ workers, depth: Number(values.depth), imageSize: 256, crop, transform: { mean: MEAN, std: STD } });
      try {
        // Training stream: the first batch (worker start-up, first-touch) is not timed.
        const steps = Math.max(2, Math.floor(list.files.length / batch));
        const train = new ImageNetTrainSource(pool, list, { crop, sampling: 'balanced', prefetch: 2, epochSize: steps });
        let n = 0;
        let t0 = 0;
        for await (const b of train.batches(1, batch, 1)) {
          if (t0 === 0) t0 = performance.now();
          else n += b.count;
        }
        const trainRate = n / ((performance.now() - t0) / 1000);
        // Center-crop pass over every file.
        const val = new ImageFolderEvalSource(pool, list, { crop, prefetch: 2 });
        const v0 = performance.now();
        let m = 0;
        for await (const b of val.batches(batch)) m += b.count;
        const evalRate = m / ((performance.now() - v0) / 1000);
        const line = { workers, depth: Number(values.depth), cores: availableParallelism(), batch, trainImagesPerSecond: Math.round(trainRate), evalImagesPerSecond: Math.round(evalRate), trainImages: n, evalImages: m };
        process.stdout.write(JSON.stringify(line) + '\n');
      } finally {
        await pool.close();
      }
    }
  } finally {
    if (made) rmSync(made, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
