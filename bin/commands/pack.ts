// `nincc pack --data IMAGENET_DIR -o DATASET`: writes an ImageNet folder once as shards of JPEGs at the
// model's short side plus an index, for `nincc train/eval --data DATASET`; `--verify DATASET` checks one.
import { availableParallelism } from 'node:os';
import { packImageNet } from '../../runtime/imagenet/pack.js';
import { verifyPackedDataset } from '../../runtime/imagenet/pack-verify.js';
import { DataLayoutError } from '../../runtime/imagenet/folder.js';
import { progressBar, type ProgressBar } from '../../runtime/progress.js';
import { intOption, numberOption, stringOption, UsageError, type Command, type ParsedArgs } from '../command.js';
import { requireNetwork } from '../spec-file.js';

const DEFAULT_IMAGE_SIZE = 256; // NIN's, and imagenet-multiGPU.torch's, loadSize
const DEFAULT_QUALITY = 90;
const DEFAULT_SHARD_MB = 1024;

/** The short side to store: --image-size, else the spec's imageSize (its crop side when it has none), else 256. */
function imageSizeFrom(args: ParsedArgs): number {
  const given = intOption(args, 'image-size');
  const spec = stringOption(args, 'spec');
  if (given !== undefined && spec !== undefined) throw new UsageError('--image-size and --spec both give the image size: pass one');
  if (given !== undefined) return given;
  if (spec === undefined) return DEFAULT_IMAGE_SIZE;
  const { network } = requireNetwork(spec);
  return network.imageSize ?? Math.max(network.input[1] ?? 0, network.input[2] ?? 0);
}

function verify(dir: string, quiet: boolean): number {
  let bar: ProgressBar | undefined;
  const r = verifyPackedDataset(dir, (done, total) => (bar ??= progressBar('verify shards', total, process.stderr, quiet)).update(done));
  bar?.finish(`${dir}: ${r.index.shards.length} shards, ${r.records} records, ${(r.bytes / 2 ** 20).toFixed(1)} MiB read`);
  for (const p of r.problems) process.stderr.write(`nincc pack: ${p}\n`);
  if (r.problems.length > 0) {
    process.stderr.write(`nincc pack: ${r.problems.length} of ${r.index.shards.length} shards are damaged: pack ${r.index.source} again into a new directory\n`);
    return 1;
  }
  process.stdout.write(`${dir}: every shard and record verified (sha256 and CRC-32)\n`);
  return 0;
}

export const packCommand: Command = {
  name: 'pack',
  summary: 'Pack an ImageNet folder into a few large shard files of JPEGs at the short side the model reads, with an index, so train and eval read records from a few open files without per-file opens or full-size decodes.',
  usage: '--data IMAGENET_DIR -o DATASET [--image-size 256 | --spec FILE] [--quality 90] [--shard-mb 1024] [--jobs N] | --verify DATASET',
  details:
    "Each training and validation image is resized as the folder reader would (short side to the image size, libvips' linear kernel) and stored as a JPEG of that quality; a JPEG already no larger is kept byte for byte; unreadable files are left out and listed. " +
    'Records are framed with their length and a CRC-32, each shard has a sha256 in DATASET/index.json (docs/packed-dataset.md).\n' +
    'Interrupted (Ctrl-C, kill -9, a crash), the same command continues: finished shards are verified and kept, the half-written one is written again. The index is written last.\n' +
    "--verify DATASET reads every shard and names each damaged one with the byte offset of its first bad record. 'nincc train/eval --data DATASET' check every shard's size when they open it and every record's CRC-32 as they read it.",
  options: {
    data: { type: 'string', value: 'DIR', help: 'the ImageNet folder (train/<class>/*.JPEG and val/<class>/*.JPEG)' },
    out: { type: 'string', short: 'o', value: 'DATASET', help: 'the directory to write (new or empty, or an unfinished pack to continue)' },
    'image-size': { type: 'string', value: 'N', help: `short side to store (default ${DEFAULT_IMAGE_SIZE}, NIN's imageSize)` },
    spec: { type: 'string', value: 'FILE', help: "take the short side from a .model spec's imageSize" },
    quality: { type: 'string', value: 'Q', help: `JPEG quality of re-encoded images, 1–100 (default ${DEFAULT_QUALITY})` },
    'shard-mb': { type: 'string', value: 'MB', help: `close a shard once it holds this many MiB (default ${DEFAULT_SHARD_MB}; fractions allowed)` },
    jobs: { type: 'string', value: 'N', help: `images encoded at once (default: the cores, here ${availableParallelism()})` },
    verify: { type: 'string', value: 'DATASET', help: 'check a packed dataset: every shard sha256 and record CRC-32' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
  },
  async run(args) {
    const quiet = Boolean(args.values.quiet);
    if (args.positionals.length > 0) throw new UsageError(`nincc pack takes no positional arguments, got ${args.positionals.join(' ')}\nusage: nincc pack ${packCommand.usage}`);
    const toVerify = stringOption(args, 'verify');
    const data = stringOption(args, 'data');
    const out = stringOption(args, 'out');
    try {
      if (toVerify !== undefined) {
        if (data !== undefined || out !== undefined) throw new UsageError('--verify DATASET checks a finished dataset: it takes no --data or -o');
        return verify(toVerify, quiet);
      }
      if (!data) throw new UsageError('--data IMAGENET_DIR is required');
      if (!out) throw new UsageError('-o DATASET is required');
      const imageSize = imageSizeFrom(args);
      const quality = intOption(args, 'quality') ?? DEFAULT_QUALITY;
      if (quality > 100) throw new UsageError(`--quality must be 1–100, got ${quality}`);
      const shardMb = numberOption(args, 'shard-mb') ?? DEFAULT_SHARD_MB;
      if (!(shardMb > 0)) throw new UsageError(`--shard-mb must be a positive number, got ${shardMb}`);
      const jobs = intOption(args, 'jobs') ?? availableParallelism();
      // sharp encodes on libuv's thread pool (4 threads unless told before its first use): one thread per job.
      process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, jobs));
      let bar: ProgressBar | undefined; // made at the first image, when the total is known
      const onSigint = () => {
        process.stderr.write(`\nnincc pack: interrupted; run the same command again to continue from the finished shards in ${out}\n`);
        process.exit(130);
      };
      process.on('SIGINT', onSigint);
      const started = Date.now();
      const s = await packImageNet(data, out, { imageSize, quality, shardBytes: Math.ceil(shardMb * 2 ** 20), concurrency: jobs, onProgress: (done, total) => (bar ??= progressBar('pack images', total, process.stderr, quiet)).update(done) }, (line) => process.stderr.write(`nincc pack: ${line}\n`)).finally(() => process.off('SIGINT', onSigint));
      const resumed = s.resumedShards > 0 ? `, ${s.resumedShards} of them verified from an earlier run` : '';
      bar?.finish(`read ${s.images.train + s.images.val + s.skipped.length} images`);
      process.stdout.write(`packed ${s.images.train} training and ${s.images.val} validation images at short side ${imageSize} into ${s.shards} shards (${(s.bytes / 2 ** 20).toFixed(1)} MiB${resumed}) in ${out}, ${((Date.now() - started) / 1000).toFixed(1)} s; ${s.kept} JPEGs kept as they were\n`);
      if (s.warnings > 0) process.stderr.write(`warning: ${s.warnings} damaged images were decoded past the decoder's warning and packed\n`);
      if (s.skipped.length > 0) {
        process.stderr.write(`left out ${s.skipped.length} unreadable file${s.skipped.length === 1 ? '' : 's'} (listed in the index):\n`);
        for (const k of s.skipped.slice(0, 20)) process.stderr.write(`  ${k.path}: ${k.reason}\n`);
        if (s.skipped.length > 20) process.stderr.write(`  … and ${s.skipped.length - 20} more\n`);
      }
      return 0;
    } catch (e) {
      if (e instanceof DataLayoutError) {
        process.stderr.write(`nincc pack: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};
