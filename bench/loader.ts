// Loader throughput: decoded + augmented images/s of the ImageNet folder loader (sharp decode, resize to
// 256, random 224 crop, flip, normalise) beside the packed dataset's (`nincc pack` at 256: one read per record
// from an open shard, decode without resize) with sharp and with the native libjpeg-turbo crop decoder
// (nincc_jpeg.node, when built), with N decode workers, on synthetic full-size JPEGs; the paths are timed in
// alternating rounds. Per core, for the whole machine, and projected to a 16-core host.
// Build and run:  npx tsc -p tsconfig.json && node dist/bench/loader.js --images 512 --rounds 3 [--batch 64 --steps 8]
// --dir ROOT times an existing ImageNet folder (train/ and val/) instead of synthetic photos. Pin to two
// cores with `taskset -c 0,1` on a bigger machine. Prints one JSON line per measurement.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { DecodePool } from '../runtime/imagenet/decode-pool.js';
import { configureSharpForWorkers } from '../runtime/imagenet/decode.js';
import { nativeCropDecoder, nativeJpeg } from '../runtime/imagenet/decode-native.js';
import { decodePlaced, ShardReader, type DecodeRequest } from '../runtime/imagenet/decode-worker.js';
import { cropToBytes, cropToTensor } from '../runtime/imagenet/donkey.js';
import { openImageNetFolder, type ImageList } from '../runtime/imagenet/folder.js';
import { packImageNet } from '../runtime/imagenet/pack.js';
import { openPackedDataset, type PackedDataset } from '../runtime/imagenet/packed.js';
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

/** An ImageNet-style folder: ROOT/train/<class>/ with `images` photos, ROOT/val/<class>/ with one per class. */
async function makeFolder(root: string, images: number, classes: number): Promise<void> {
  const write = async (file: string, i: number) => {
    const [w, h] = SHAPES[i % SHAPES.length];
    await sharp(photoLike(w, h, i + 1), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
  };
  for (let c = 0; c < classes; c++) {
    for (const split of ['train', 'val']) mkdirSync(join(root, split, `n${String(c).padStart(8, '0')}`), { recursive: true });
    await write(join(root, 'val', `n${String(c).padStart(8, '0')}`, `val_${c}.JPEG`), images + c);
  }
  for (let i = 0; i < images; i++) await write(join(root, 'train', `n${String(i % classes).padStart(8, '0')}`, `img_${i}.JPEG`), i);
}

const crop = { channels: 3 as const, width: 224, height: 224 };
const transform = { mean: MEAN, std: STD };

/**
 * One image at a time on this thread, the two paths alternating image by image (so load on the shared
 * machine hits both alike): the cost per core of each stage, without any pool. cropBytesMs: the same crop
 * cut as uint8 NHWC for a model that takes uint8 images (cropToBytes; its first conv normalises), timed on
 * the same decoded image right after the float crop.
 */
type Path = 'folder' | 'packed' | 'native';
async function perImageCost(folder: ImageList, packed: PackedDataset, paths: readonly Path[]): Promise<Partial<Record<Path, { decodeMs: number; cropNormaliseMs: number; cropBytesMs: number; imagesPerSecond: number }>>> {
  configureSharpForWorkers();
  const n = Math.min(200, folder.files.length);
  const out = new Float32Array(3 * 224 * 224);
  const outBytes = new Uint8Array(3 * 224 * 224);
  const setup = { imageSize: 256, crop, transform, shards: packed.shards, decoder: 'sharp' as const };
  const reader = new ShardReader(packed.shards);
  const native = nativeCropDecoder(crop);
  const time = { folder: { decode: 0, crop: 0, bytes: 0 }, packed: { decode: 0, crop: 0, bytes: 0 }, native: { decode: 0, crop: 0, bytes: 0 } };
  // Exactly what a decode worker does for each (decode-worker.ts): for a record, one read and the crop cut out
  // by libvips (packed) or by libjpeg-turbo (native).
  const one = async (job: DecodeRequest, t: { decode: number; crop: number; bytes: number }, path: Path) => {
    let t0 = performance.now();
    const { img, placement } = await decodePlaced(job, setup, reader, path === 'native' ? native : undefined);
    t.decode += performance.now() - t0;
    t0 = performance.now();
    cropToTensor(img.pixels, img, crop, placement, transform, out);
    t.crop += performance.now() - t0;
    t0 = performance.now();
    cropToBytes(img.pixels, img, crop, placement, outBytes);
    t.bytes += performance.now() - t0;
  };
  const job = (file: string, i: number, record?: DecodeRequest['record']): DecodeRequest => ({ id: i, file, ...(record ? { record } : {}), out: new SharedArrayBuffer(4), offset: 0, mode: 'train', uY: 0.3, uX: 0.6, uFlip: 0.7 });
  try {
    for (let i = 0; i < n; i++) {
      for (const path of paths) await one(path === 'folder' ? job(folder.files[i], i) : job(packed.train.files[i], i, packed.train.record!(i)), time[path], path);
    }
  } finally {
    reader.close();
  }
  const per = (x: { decode: number; crop: number; bytes: number }) => ({ decodeMs: round(x.decode / n, 3), cropNormaliseMs: round(x.crop / n, 3), cropBytesMs: round(x.bytes / n, 3), imagesPerSecond: Math.round((1000 * n) / (x.decode + x.crop)) });
  return Object.fromEntries(paths.map((p) => [p, per(time[p])]));
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));
/**
 * A uint8 model's native crop, ms per image on this thread: libjpeg writing it straight into the batch slot
 * (inSlot, what a decode worker does now) against decoding into the worker's bytes and cutting them into the
 * slot with cropToBytes (viaCopy, what it did before). Each image is timed both ways, the order alternating
 * image by image; `passes` passes over the records, medians of the passes' means.
 */
async function nativeU8Cost(packed: PackedDataset, passes: number): Promise<{ inSlotMs: number; viaCopyMs: number }> {
  const native = nativeCropDecoder(crop);
  if (!native) throw new Error('the native decoder is not built');
  const setup = { imageSize: 256, crop, transform, shards: packed.shards, decoder: 'native' as const, output: 'u8' as const };
  const reader = new ShardReader(packed.shards);
  const shared = new SharedArrayBuffer(3 * 224 * 224);
  const slot = new Uint8Array(shared);
  const n = Math.min(200, packed.train.files.length);
  const means = { inSlot: [] as number[], viaCopy: [] as number[] };
  try {
    for (let p = 0; p < passes; p++) {
      let inSlot = 0;
      let viaCopy = 0;
      for (let i = 0; i < n; i++) {
        const job: DecodeRequest = { id: i, file: packed.train.files[i], record: packed.train.record!(i), out: shared, offset: 0, mode: 'train', uY: 0.3, uX: 0.6, uFlip: i % 3 === 0 ? 0.7 : 0.2 };
        const ways = [
          async () => {
            const t0 = performance.now();
            const placed = await decodePlaced(job, setup, reader, native, slot);
            if (!placed.inSlot) cropToBytes(placed.img.pixels, placed.img, crop, placed.placement, slot);
            inSlot += performance.now() - t0;
          },
          async () => {
            const t0 = performance.now();
            const placed = await decodePlaced(job, setup, reader, native);
            cropToBytes(placed.img.pixels, placed.img, crop, placed.placement, slot);
            viaCopy += performance.now() - t0;
          },
        ];
        if (i % 2) ways.reverse();
        for (const way of ways) await way();
      }
      means.inSlot.push(inSlot / n);
      means.viaCopy.push(viaCopy / n);
    }
  } finally {
    reader.close();
  }
  return { inSlotMs: round(median(means.inSlot), 3), viaCopyMs: round(median(means.viaCopy), 3) };
}


/** Images/s of one training pass (the first batch, worker start-up and first touch, not timed) and one center-crop pass. */
async function measurePool(list: ImageList, workers: number, depth: number | undefined, batch: number, minSteps: number, shards?: readonly string[], decoder: 'native' | 'sharp' = 'sharp'): Promise<{ train: number; eval: number }> {
  const pool = new DecodePool({ workers, ...(depth !== undefined ? { depth } : {}), imageSize: 256, crop, transform, decoder, ...(shards ? { shards } : {}) });
  if (pool.decoder !== decoder) throw new Error(`asked for the ${decoder} decoder, the pool has ${pool.decoder}`);
  try {
    // At least minSteps batches (the sampler draws from the list again when it runs out): a fast path's few
    // batches would otherwise time little more than the pipeline filling up.
    const steps = Math.max(2, minSteps, Math.floor(list.files.length / batch));
    const train = new ImageNetTrainSource(pool, list, { crop, sampling: 'balanced', prefetch: 2, epochSize: steps });
    let n = 0;
    let t0 = 0;
    for await (const b of train.batches(1, batch, 1)) {
      if (t0 === 0) t0 = performance.now();
      else n += b.count;
    }
    const trainRate = n / ((performance.now() - t0) / 1000);
    const val = new ImageFolderEvalSource(pool, list, { crop, prefetch: 2 });
    const v0 = performance.now();
    let m = 0;
    for await (const b of val.batches(batch)) m += b.count;
    return { train: Math.round(trainRate), eval: Math.round(m / ((performance.now() - v0) / 1000)) };
  } finally {
    await pool.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '1024' },
      workers: { type: 'string', multiple: true },
      batch: { type: 'string', default: '128' },
      rounds: { type: 'string', default: '3' },
      dir: { type: 'string' },
      depth: { type: 'string' }, // jobs in flight per worker; default the pool's own
      steps: { type: 'string', default: '4' },
      keep: { type: 'boolean' },
    },
  });
  const images = Number(values.images);
  const batch = Number(values.batch);
  const rounds = Number(values.rounds);
  const depth = values.depth === undefined ? undefined : Number(values.depth);
  const minSteps = Number(values.steps);
  const cores = availableParallelism();
  const workerCounts = (values.workers ?? [String(cores)]).map(Number);
  const work = mkdtempSync(join(tmpdir(), 'nincc-loader-bench-'));
  const root = values.dir ?? join(work, 'imagenet');
  try {
    let started = Date.now();
    if (!values.dir) await makeFolder(root, images, 10);
    const folder = openImageNetFolder(root);
    const bytes = folder.train.files.reduce((sum, f) => sum + statSync(f).size, 0);
    process.stderr.write(`${folder.train.files.length} JPEGs (${(bytes / folder.train.files.length / 1024).toFixed(0)} KB each) in ${root}, made in ${((Date.now() - started) / 1000).toFixed(1)} s; ${cores} cores (${cpus()[0]?.model ?? '?'})\n`);
    started = Date.now();
    const packedDir = join(work, 'packed');
    const s = await packImageNet(root, packedDir, { imageSize: 256, quality: 90, shardBytes: 256 * 2 ** 20, concurrency: cores });
    const packSeconds = (Date.now() - started) / 1000;
    const packed = openPackedDataset(packedDir);
    process.stdout.write(JSON.stringify({ pack: { images: s.images.train + s.images.val, seconds: round(packSeconds, 1), imagesPerSecond: Math.round((s.images.train + s.images.val) / packSeconds), sourceKB: Math.round(bytes / folder.train.files.length / 1024), packedKB: Math.round(s.bytes / (s.images.train + s.images.val) / 1024), shards: s.shards } }) + '\n');
    const jpeg = nativeJpeg();
    if (!jpeg.ok) process.stderr.write(`no native column: ${jpeg.why}\n`);
    const paths: Path[] = jpeg.ok ? ['folder', 'packed', 'native'] : ['folder', 'packed'];
    const cost = await perImageCost(folder.train, packed, paths);
    const over = (a: Path) => (cost[a] && cost.folder ? round(cost[a].imagesPerSecond / cost.folder.imagesPerSecond, 2) : undefined);
    process.stdout.write(JSON.stringify({ oneThread: cost, overFolder: { packed: over('packed'), native: over('native') }, ...(jpeg.ok ? { libjpegTurbo: jpeg.addon.version } : {}) }) + '\n');
    if (jpeg.ok) process.stdout.write(JSON.stringify({ nativeU8: await nativeU8Cost(packed, 5) }) + '\n');
    const measure = (path: Path, workers: number) =>
      path === 'folder' ? measurePool(folder.train, workers, depth, batch, minSteps) : measurePool(packed.train, workers, depth, batch, minSteps, packed.shards, path === 'native' ? 'native' : 'sharp');
    for (const workers of workerCounts) {
      const runs: Partial<Record<Path, { train: number; eval: number }[]>> = {};
      // Interleaved rounds: the machine's load changes by the minute, so each round times every path back to back.
      for (let r = 0; r < rounds; r++) {
        const times: Partial<Record<Path, { train: number; eval: number }>> = {};
        for (const path of paths) (runs[path] ??= []).push((times[path] = await measure(path, workers)));
        process.stdout.write(JSON.stringify({ workers, round: r + 1, ...times }) + '\n');
      }
      const summary = (xs: { train: number; eval: number }[]) => {
        const train = median(xs.map((x) => x.train));
        return { trainImagesPerSecond: train, evalImagesPerSecond: median(xs.map((x) => x.eval)), trainPerCore: Math.round(train / Math.min(workers, cores)) };
      };
      const m = Object.fromEntries(paths.map((p) => [p, summary(runs[p]!)])) as Partial<Record<Path, ReturnType<typeof summary>>>;
      const f = m.folder!;
      const ratio = (p: Path) => (m[p] ? round(m[p].trainImagesPerSecond / f.trainImagesPerSecond, 2) : undefined);
      // A 16-core GPU host leaves one core to the training loop, as defaultWorkerCount does: 15 decoding cores.
      const projected = Object.fromEntries(paths.map((p) => [p, m[p]!.trainPerCore * 15]));
      process.stdout.write(JSON.stringify({ workers, cores, batch, steps: minSteps, rounds, median: m, overFolder: { packed: ratio('packed'), native: ratio('native') }, projected16CoreHost: projected }) + '\n');
    }
  } finally {
    if (!values.keep) rmSync(work, { recursive: true, force: true });
    else process.stderr.write(`kept ${work}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
