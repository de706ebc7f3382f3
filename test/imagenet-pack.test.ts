// `nincc pack` and the packed reader on a small synthetic ImageNet folder: batches and losses equal the
// folder path's within the JPEG re-encoding's error, the native libjpeg-turbo decoder's batches equal sharp's, an interrupted pack resumes to verified shards, and
// corrupt shards and bad indexes are errors naming the file and the byte offset or field.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseCommandArgs } from '../bin/command.js';
import { packCommand } from '../bin/commands/pack.js';
import { DecodePool } from '../runtime/imagenet/decode-pool.js';
import { nativeCropDecoder, nativeJpeg } from '../runtime/imagenet/decode-native.js';
import { decodePlaced, ShardReader, type DecodeRequest } from '../runtime/imagenet/decode-worker.js';
import { scaledSize } from '../runtime/imagenet/donkey.js';
import { openImageNetFolder, type ImageNetFolder } from '../runtime/imagenet/folder.js';
import { packImageNet } from '../runtime/imagenet/pack.js';
import { INDEX_FILE, readPackIndex, RECORD_HEADER_BYTES, type PackIndex } from '../runtime/imagenet/pack-format.js';
import { openPackedDataset, type PackedDataset } from '../runtime/imagenet/packed.js';
import { verifyPackedDataset } from '../runtime/imagenet/pack-verify.js';
import { ImageFolderEvalSource, ImageNetTrainSource } from '../runtime/imagenet/sources.js';
import { nincc } from './cli-run.js';
import { collect, collectBytes, normaliseBytes } from './imagenet/collect.js';
import { makeImageNetFolder } from './imagenet/make-folder.js';
import { TINY_IMAGE_SPEC } from './imagenet/tiny-spec.js';
import { EVAL_LOSS_GAP, TRAIN_LOSS_GAP } from './imagenet/loss-gaps.js';
import { floatDirectoryNote } from '../bin/artifact-arg.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-imagenet-pack-'));
const crop = { channels: 3 as const, width: 32, height: 32 };
const transform = { mean: [0.5, 0.45, 0.4], std: [0.25, 0.25, 0.25] };
const IMAGE_SIZE = 40;
const SHARD_BYTES = 1500; // a few images per shard, so resuming has shards to keep
/**
 * The re-encoding's error, in 8-bit pixel levels, for the test folder's images at quality 90: the largest
 * difference of one crop value from the folder path's, and the largest mean difference over a batch.
 * (Measured: see the report of the test that checks them.)
 */
const MAX_LEVELS = 100;
const MEAN_LEVELS = 3;
/**
 * The native decoder (libjpeg-turbo) against sharp (libvips over libjpeg) on the same packed records, in the same
 * levels: at the stored size both run the same IDCT and upsampling, so the crop comes out identical; scaled by
 * 4/8, libjpeg's DCT-domain scaling stands in for libvips' resize (seen: 54 levels at the test pattern's sawtooth
 * edges, 0.8 averaged over a batch).
 */
const NATIVE_LEVELS = { max: 0, mean: 0 };
const NATIVE_SCALED_LEVELS = { max: 64, mean: 1.5 };

const levels = (a: Float32Array, b: Float32Array, size: { width: number; height: number } = crop): { max: number; mean: number } => {
  const plane = size.width * size.height;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) * transform.std[Math.floor(i / plane) % 3] * 255;
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
};

/** `nincc pack ARGS` in this process (a CLI start costs more than the check), its exit code and stderr. */
async function packCli(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const spy = vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  try {
    const parsed = parseCommandArgs(packCommand, args);
    if (parsed === 'help') throw new Error('unexpected --help');
    return { code: await packCommand.run(parsed), stderr: err.join('') };
  } finally {
    spy.mockRestore();
  }
}

describe('nincc pack and the packed reader', () => {
  let source: string; // the test folder without its unreadable files, plus one small JPEG kept as it is
  let folder: ImageNetFolder;
  let packedDir: string;
  let packed: PackedDataset;
  const pools: DecodePool[] = [];

  beforeAll(async () => {
    const made = await makeImageNetFolder(join(work, 'imagenet'));
    source = made.root;
    // Unreadable files change which images exist, and so every later draw: the batch comparison needs the same list.
    for (const f of [...made.bad.train, ...made.bad.val]) rmSync(f);
    await sharp({ create: { width: 30, height: 36, channels: 3, background: { r: 200, g: 80, b: 20 } } }).jpeg({ quality: 95 }).toFile(join(source, 'train', 'apple', 'a_small.JPEG'));
    folder = openImageNetFolder(source);
    packedDir = join(work, 'packed');
    await packImageNet(source, packedDir, { imageSize: IMAGE_SIZE, quality: 90, shardBytes: SHARD_BYTES, concurrency: 2 });
    packed = openPackedDataset(packedDir);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
    rmSync(work, { recursive: true, force: true });
  });
  const pool = (shards?: readonly string[], decoder?: 'native' | 'sharp', imageSize = IMAGE_SIZE, size = crop) => {
    const p = new DecodePool({ workers: 2, imageSize, crop: size, transform, ...(shards ? { shards } : {}), ...(decoder ? { decoder } : {}) });
    pools.push(p);
    return p;
  };

  it('stores every image in folder order at the folder reader\'s size (a JPEG already smaller as it was) and verifies', async () => {
    for (const split of ['train', 'val'] as const) {
      const t = packed.index.splits[split];
      expect(t.name).toEqual(folder[split].files.map((f) => relative(folder[split].dir, f)));
      expect(t.label).toEqual([...folder[split].labels]);
      for (let k = 0; k < t.name.length; k++) {
        const meta = await sharp(folder[split].files[k]).metadata();
        const want = Math.min(meta.width!, meta.height!) > IMAGE_SIZE ? scaledSize(meta.width!, meta.height!, IMAGE_SIZE) : { width: meta.width!, height: meta.height! };
        expect([t.width[k], t.height[k]], t.name[k]).toEqual([want.width, want.height]);
      }
    }
    const k = packed.index.splits.train.name.indexOf('apple/a_small.JPEG');
    const t = packed.index.splits.train;
    const rec = readFileSync(join(packedDir, packed.index.shards[t.shard[k]].file)).subarray(t.offset[k] + RECORD_HEADER_BYTES, t.offset[k] + RECORD_HEADER_BYTES + t.length[k]);
    expect(Buffer.compare(rec, readFileSync(join(source, 'train', 'apple', 'a_small.JPEG')))).toBe(0);
    expect(packed.index.shards.length).toBeGreaterThan(3);
    expect(verifyPackedDataset(packedDir).problems).toEqual([]);
  });

  it('gives the folder path\'s training and evaluation batches for the same seed (and rank shares), within the re-encoding error', async () => {
    const folderPool = pool();
    const packedPool = pool(packed.shards);
    const opts = { crop, sampling: 'balanced' as const, prefetch: 2, epochSize: 3 };
    const a = await collect(new ImageNetTrainSource(folderPool, folder.train, opts).batches(1, 5, 7));
    const packedTrain = new ImageNetTrainSource(packedPool, packed.train, opts);
    const b = await collect(packedTrain.batches(1, 5, 7));
    expect(packedTrain.takeSkipped().files).toEqual(new Map());
    const va = await collect(new ImageFolderEvalSource(folderPool, folder.val, { crop, prefetch: 2 }).batches(3));
    const vb = await collect(new ImageFolderEvalSource(packedPool, packed.val, { crop, prefetch: 2 }).batches(3));
    expect(b.labels).toEqual(a.labels);
    expect(vb.labels).toEqual(va.labels);
    const diffs = [...a.images.map((x, i) => levels(x, b.images[i])), ...va.images.map((x, i) => levels(x, vb.images[i]))];
    const worst = { max: Math.max(...diffs.map((d) => d.max)), mean: Math.max(...diffs.map((d) => d.mean)) };
    process.stderr.write(`packed vs folder batches: largest difference ${worst.max.toFixed(2)} levels, largest batch mean ${worst.mean.toFixed(3)} levels\n`);
    expect(worst.max).toBeLessThanOrEqual(MAX_LEVELS);
    expect(worst.mean).toBeLessThanOrEqual(MEAN_LEVELS);
    // Data-parallel ranks read their share of each packed batch, the same values the whole batch has there.
    const per = crop.channels * crop.width * crop.height;
    const rank1 = await collect(new ImageNetTrainSource(packedPool, packed.train, opts).batches(1, 5, 7, 0, { rank: 1, size: 2 }));
    rank1.images.forEach((x, i) => expect(x).toEqual(b.images[i].subarray(2 * per, 5 * per)));
    expect(rank1.labels).toEqual(b.labels.map((l) => l.slice(2)));
    // Not vacuous: the same batches with another seed are far apart.
    const c = await collect(new ImageNetTrainSource(packedPool, packed.train, opts).batches(1, 5, 8));
    expect(Math.max(...c.images.map((x, i) => levels(x, b.images[i]).mean))).toBeGreaterThan(4 * MEAN_LEVELS);
  }, 60_000);

  it('decodes packed records natively (libjpeg-turbo crop, and DCT-domain scale) to sharp\'s batches for the same seed', async () => {
    // CI installs libjpeg62-turbo-dev (scripts/install-deps.sh), so the decoder must be there to be compared.
    expect(nativeJpeg(), 'nincc_jpeg.node').toMatchObject({ ok: true });
    const opts = { sampling: 'balanced' as const, prefetch: 2, epochSize: 3 };
    // At the stored size (crop rows and iMCU columns only), and at half of it (libjpeg's 4/8 scale against libvips' resize).
    for (const [imageSize, size] of [[IMAGE_SIZE, crop], [IMAGE_SIZE / 2, { ...crop, width: 16, height: 16 }]] as const) {
      const native = pool(packed.shards, 'native', imageSize, size);
      const viaSharp = pool(packed.shards, 'sharp', imageSize, size);
      expect([native.decoder, viaSharp.decoder]).toEqual(['native', 'sharp']);
      const a = await collect(new ImageNetTrainSource(viaSharp, packed.train, { ...opts, crop: size }).batches(1, 5, 7));
      const b = await collect(new ImageNetTrainSource(native, packed.train, { ...opts, crop: size }).batches(1, 5, 7));
      const va = await collect(new ImageFolderEvalSource(viaSharp, packed.val, { crop: size, prefetch: 2 }).batches(3));
      const vb = await collect(new ImageFolderEvalSource(native, packed.val, { crop: size, prefetch: 2 }).batches(3));
      expect(b.labels).toEqual(a.labels);
      expect(vb.labels).toEqual(va.labels);
      const diffs = [...a.images.map((x, i) => levels(x, b.images[i], size)), ...va.images.map((x, i) => levels(x, vb.images[i], size))];
      const worst = { max: Math.max(...diffs.map((d) => d.max)), mean: Math.max(...diffs.map((d) => d.mean)) };
      process.stderr.write(`native vs sharp packed batches at imageSize ${imageSize}: largest difference ${worst.max.toFixed(2)} levels, largest batch mean ${worst.mean.toFixed(3)} levels\n`);
      const bound = imageSize === IMAGE_SIZE ? NATIVE_LEVELS : NATIVE_SCALED_LEVELS;
      expect(worst.max).toBeLessThanOrEqual(bound.max);
      expect(worst.mean).toBeLessThanOrEqual(bound.mean);
    }
  }, 60_000);

  it('writes a uint8 model\'s native crops, flipped or not, straight into the batch slot: the float batches normalised, bit for bit', async () => {
    expect(nativeJpeg(), 'nincc_jpeg.node').toMatchObject({ ok: true });
    const opts = { crop, sampling: 'balanced' as const, prefetch: 2, epochSize: 3 };
    const floats = pool(packed.shards, 'native');
    const bytes = new DecodePool({ workers: 2, imageSize: IMAGE_SIZE, crop, transform, shards: packed.shards, decoder: 'native', output: 'u8' });
    pools.push(bytes);
    const a = await collect(new ImageNetTrainSource(floats, packed.train, opts).batches(1, 5, 7));
    const b = await collectBytes(new ImageNetTrainSource(bytes, packed.train, opts).batches(1, 5, 7));
    const va = await collect(new ImageFolderEvalSource(floats, packed.val, { crop, prefetch: 2 }).batches(3));
    const vb = await collectBytes(new ImageFolderEvalSource(bytes, packed.val, { crop, prefetch: 2 }).batches(3));
    expect([b.labels, vb.labels]).toEqual([a.labels, va.labels]);
    [...b.images, ...vb.images].forEach((x, i) => expect(Array.from(normaliseBytes(x, crop, transform)), `batch ${i}`).toEqual(Array.from([...a.images, ...va.images][i])));

    // No buffer between: decodePlaced hands back the slot it was given, and the worker's own crop bytes stay unwritten.
    const native = nativeCropDecoder(crop)!;
    const reader = new ShardReader(packed.shards);
    const per = crop.channels * crop.width * crop.height;
    const k = packed.index.splits.train.width.findIndex((w, i) => Math.min(w, packed.index.splits.train.height[i]) === IMAGE_SIZE); // read natively (DCT scale 8/8)
    const setup = { imageSize: IMAGE_SIZE, crop, transform, output: 'u8' as const, decoder: 'native' as const };
    try {
      for (const uFlip of [0.2, 0.8]) {
        const shared = new SharedArrayBuffer(2 * per);
        const slot = new Uint8Array(shared, per, per);
        const job: DecodeRequest = { id: 0, file: 'record', record: packed.train.record!(k), out: shared, offset: per, mode: 'train', uY: 0.3, uX: 0.7, uFlip };
        const placed = await decodePlaced(job, setup, reader, native, slot);
        expect([placed.inSlot, placed.img.pixels === slot, placed.origin.flip]).toEqual([true, true, uFlip > 0.5]);
        expect(native.bytes.every((v) => v === 0), 'the worker\'s crop bytes').toBe(true);
        const unslotted = await decodePlaced(job, setup, reader, native);
        expect([unslotted.inSlot, unslotted.img.pixels === native.bytes]).toEqual([undefined, true]);
        expect(Array.from(slot)).toEqual(Array.from(native.bytes));
        native.bytes.fill(0);
      }
    } finally {
      reader.close();
    }
  }, 60_000);

  it('trains and evaluates to the folder path\'s losses within that error', () => {
    writeFileSync(join(work, 'tiny.model'), TINY_IMAGE_SPEC);
    const artifact = join(work, 'artifact');
    // Relative to its directory, so the generated kernels (which name their spec file) share a cache entry: test/u8-default.test.ts.
    const built = nincc(['build', 'tiny.model', '-o', artifact, '-q'], { cwd: work });
    expect(built.code, built.stderr).toBe(0);
    // The folder run's test pass scores its final weights on the folder's validation images; eval scores the
    // same weights on the packed ones (one CLI start fewer than evaluating both).
    const train = (data: string, name: string, test: boolean) => {
      const r = nincc(['train', artifact, '--data', data, '--epochs', '1', ...(test ? [] : ['--no-test']), '--seed', '3', '--workers', '2', '-q', '-o', join(work, name)]);
      expect(r.code, r.stderr).toBe(0);
      // A float32 directory is run as built, on float crops, said once (the uint8 default is for specs: test/u8-default.test.ts).
      expect(r.stderr.match(/^note: .*$/gm)).toEqual([`note: ${floatDirectoryNote(artifact)}`]);
      expect(r.stderr).toContain('; float32 crops;');
      return JSON.parse(readFileSync(join(work, name, 'log.jsonl'), 'utf8').trim()) as { loss: number; testLoss?: number; evaluated?: number };
    };
    const f = train(source, 'run-folder', true);
    const p = train(packedDir, 'run-packed', false);
    const e = nincc(['eval', artifact, '--data', packedDir, '--weights', join(work, 'run-folder', 'checkpoint.safetensors'), '--json', '--workers', '2']);
    expect(e.code, e.stderr).toBe(0);
    expect(e.stderr.match(/^note: .*$/gm)).toEqual([`note: ${floatDirectoryNote(artifact)}`]);
    const ep = JSON.parse(e.stdout) as { loss: number; count: number };
    expect(ep.count).toBe(f.evaluated);
    const trainGaps = [Math.abs(f.loss - p.loss) / f.loss];
    const evalGap = Math.abs(f.testLoss! - ep.loss) / f.testLoss!;
    process.stderr.write(`packed vs folder losses: training ${trainGaps.map((g) => g.toExponential(2)).join(', ')}; evaluation (same weights) ${evalGap.toExponential(2)}\n`);
    for (const g of trainGaps) expect(g).toBeLessThan(TRAIN_LOSS_GAP);
    expect(evalGap).toBeLessThan(EVAL_LOSS_GAP);
  }, 300_000); // a cold g++ build of the spec and four CLI runs: past 120 s on a loaded 2-core machine

  it('continues a pack killed (kill -9) or interrupted (Ctrl-C) half way through a shard, to the same verified dataset', async () => {
    const want = readPackIndex(packedDir);
    const shardsOf = (i: PackIndex) => i.shards.map((s) => [s.file, s.bytes, s.sha256]);
    const args = (out: string) => ['pack', '--data', source, '-o', out, '--image-size', String(IMAGE_SIZE), '--shard-mb', String(SHARD_BYTES / 2 ** 20), '--jobs', '2', '-q'];
    for (const signal of ['SIGKILL', 'SIGINT']) {
      const out = join(work, `resumed-${signal}`);
      const killed = nincc(args(out), { env: { NINCC_PACK_SIGNAL: `${signal}@7` } });
      expect(killed.code, killed.stderr).not.toBe(0);
      if (signal === 'SIGINT') expect(killed).toMatchObject({ code: 130, stderr: expect.stringContaining('interrupted; run the same command again') });
      const left = readdirSync(out);
      expect(left).not.toContain(INDEX_FILE);
      expect(left.filter((f) => f.endsWith('.shard')).length).toBeGreaterThan(0);
      expect(left.some((f) => f.endsWith('.partial'))).toBe(true);
      const again = await packImageNet(source, out, { imageSize: IMAGE_SIZE, quality: 90, shardBytes: SHARD_BYTES, concurrency: 2 });
      expect(again.resumedShards).toBeGreaterThan(0);
      expect(again.resumedShards).toBeLessThan(again.shards);
      expect(readdirSync(out).filter((f) => !f.endsWith('.shard')).sort()).toEqual([INDEX_FILE]);
      expect(shardsOf(readPackIndex(out))).toEqual(shardsOf(want));
      expect(verifyPackedDataset(out).problems).toEqual([]);
    }
  }, 60_000);

  it('names the shard file and byte offset of a corrupt record, in --verify and while reading', async () => {
    const bad = join(work, 'corrupt');
    cpSync(packedDir, bad, { recursive: true });
    const v = readPackIndex(bad).splits.val;
    const k = v.name.length - 1;
    const shard = join(bad, readPackIndex(bad).shards[v.shard[k]].file);
    const bytes = readFileSync(shard);
    bytes[v.offset[k] + RECORD_HEADER_BYTES + 10] ^= 0x40;
    writeFileSync(shard, bytes);
    const message = `${shard}: corrupt record at byte ${v.offset[k]}: checksum mismatch (the bytes changed after packing)`;
    const r = await packCli(['--verify', bad, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nincc pack: ${message} (val/${v.name[k]})`);
    const data = openPackedDataset(bad);
    await expect(collect(new ImageFolderEvalSource(pool(data.shards), data.val, { crop, prefetch: 2 }).batches(2))).rejects.toThrow(message);
    // A record header out of step: the magic check names the same place.
    bytes[v.offset[k]] ^= 0xff;
    writeFileSync(shard, bytes);
    expect(verifyPackedDataset(bad).problems[0]).toContain(`${shard}: corrupt record at byte ${v.offset[k]}: no record starts here (bad magic)`);
  }, 30_000);

  it('names the shard file and byte offset of a record whose checksum holds but that libjpeg cannot decode', async () => {
    const bad = join(work, 'undecodable');
    cpSync(packedDir, bad, { recursive: true });
    const index = readPackIndex(bad);
    const v = index.splits.val;
    // A record stored at the model's size, which the native decoder reads (a smaller one is resized by sharp).
    const k = v.name.findIndex((_, i) => Math.min(v.width[i], v.height[i]) === IMAGE_SIZE);
    const shard = join(bad, index.shards[v.shard[k]].file);
    const bytes = readFileSync(shard);
    const payload = bytes.subarray(v.offset[k] + RECORD_HEADER_BYTES, v.offset[k] + RECORD_HEADER_BYTES + v.length[k]);
    payload[0] = 0; // no longer starts with a JPEG's SOI marker
    bytes.writeUInt32LE(crc32(payload), v.offset[k] + 8);
    writeFileSync(shard, bytes);
    const data = openPackedDataset(bad);
    const eval_ = (decoder: 'native' | 'sharp') => collect(new ImageFolderEvalSource(pool(data.shards, decoder), data.val, { crop, prefetch: 2 }).batches(2));
    await expect(eval_('native')).rejects.toThrow(`${shard}: corrupt record at byte ${v.offset[k]}: libjpeg: Not a JPEG file: starts with 0x00 0xd8`);
    // sharp meets the same record as an unreadable image, left out of the evaluation (folder semantics): not a stop.
    await expect(eval_('sharp')).resolves.toBeDefined();
  }, 30_000);

  it('refuses a missing or damaged index and a shard cut short with an error naming the file and field', async () => {
    const dir = join(work, 'bad-index');
    cpSync(packedDir, dir, { recursive: true });
    const index = join(dir, INDEX_FILE);
    const good = readFileSync(index, 'utf8');
    const edit = (f: (o: Record<string, unknown>) => void) => {
      const o = JSON.parse(good) as Record<string, unknown>;
      f(o);
      writeFileSync(index, JSON.stringify(o));
    };
    edit((o) => (o.version = 2));
    expect(() => readPackIndex(dir)).toThrow(`${index}: version: this nincc reads version 1, got 2: pack the dataset again`);
    edit((o) => ((o.splits as { val: { offset: number[] } }).val.offset.pop()));
    expect(() => readPackIndex(dir)).toThrow(`${index}: splits.val.offset: expected a list of ${packed.index.splits.val.name.length} entries (one per image)`);
    edit((o) => ((o.shards as { sha256: string }[])[0].sha256 = 'xyz'));
    expect(() => readPackIndex(dir)).toThrow(`${index}: shards[0].sha256: expected 64 hex digits`);
    writeFileSync(index, good.slice(0, 100));
    expect(() => readPackIndex(dir)).toThrow(new RegExp(`^${index}: not JSON \\(`));
    writeFileSync(index, good);
    const first = join(dir, packed.index.shards[0].file);
    truncateSync(first, packed.index.shards[0].bytes - 1);
    expect(() => readPackIndex(dir)).toThrow(`${first}: ${packed.index.shards[0].bytes - 1} bytes, the index says ${packed.index.shards[0].bytes}`);
    rmSync(index);
    const r = await packCli(['--verify', dir, '-q']);
    expect(r).toMatchObject({ code: 1, stderr: `nincc pack: ${index}: no such file (not a packed dataset: run 'nincc pack --data IMAGENET_DIR -o ${dir}')\n` });
    // An unfinished pack with other options is not continued by mistake.
    const other = join(work, 'other-options');
    mkdirSync(other);
    copyFileSync(join(packedDir, packed.index.shards[0].file), join(other, 'stray.bin'));
    await expect(packImageNet(source, other, { imageSize: IMAGE_SIZE, quality: 90, shardBytes: SHARD_BYTES, concurrency: 1 })).rejects.toThrow(`${other}: not empty (stray.bin) and not an unfinished pack: pack into a new or empty directory`);
  });
});
