// `nincc stats --data DIR`: estimates the per-channel mean and std of an image folder the way donkey.lua
// did (10,000 random training crops each) and prints the `transform { … }` block for a spec.
import { join } from 'node:path';
import { defaultWorkerCount } from '../../runtime/imagenet/decode-pool.js';
import { DataLayoutError, isImageNetRoot, listImageFolder } from '../../runtime/imagenet/folder.js';
import { estimateChannelStats, formatTransform } from '../../runtime/imagenet/channel-stats.js';
import { progressBar } from '../../runtime/progress.js';
import { intOption, stringOption, UsageError, type Command } from '../command.js';

export const statsCommand: Command = {
  name: 'stats',
  summary: "Estimate an image folder's per-channel mean and std as imagenet-multiGPU.torch did, and print the transform block to paste into a spec.",
  usage: '--data DIR [--samples 10000] [--seed S] [--image-size 256] [--crop 224] [--channels 3] [--workers N]',
  details:
    'DIR is an ImageNet folder (its train/ is used) or a folder of class directories. As donkey.lua: SAMPLES class-balanced random crops (random flip, values in [0, 1]) give the mean of the per-crop channel means; ' +
    'another SAMPLES crops give the mean of the per-crop channel standard deviations (unbiased, as torch.std).',
  options: {
    data: { type: 'string', value: 'DIR', help: 'an ImageNet folder (train/ and val/) or a folder of class directories' },
    samples: { type: 'string', value: 'N', help: 'crops for each estimate (default 10000, as donkey.lua)' },
    seed: { type: 'string', value: 'S', help: 'seed for the sampling and crops (default 1)' },
    'image-size': { type: 'string', value: 'N', help: "short side before cropping: the spec's imageSize (default 256)" },
    crop: { type: 'string', value: 'N', help: "square crop side: the spec's input height and width (default 224)" },
    channels: { type: 'string', value: 'C', help: '3 (default) or 1' },
    workers: { type: 'string', value: 'N', help: `decode worker threads (default ${defaultWorkerCount()})` },
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
  },
  async run(args) {
    const data = stringOption(args, 'data');
    if (!data) throw new UsageError('--data DIR is required');
    if (args.positionals.length > 0) throw new UsageError(`nincc stats takes no positional arguments, got ${args.positionals.join(' ')}\nusage: nincc stats ${statsCommand.usage}`);
    const samples = intOption(args, 'samples') ?? 10000;
    const imageSize = intOption(args, 'image-size') ?? 256;
    const crop = intOption(args, 'crop') ?? 224;
    const channels = intOption(args, 'channels') ?? 3;
    if (channels !== 1 && channels !== 3) throw new UsageError(`--channels must be 1 or 3, got ${channels}`);
    if (crop > imageSize) throw new UsageError(`--crop ${crop} is larger than --image-size ${imageSize}`);
    try {
      const list = listImageFolder(isImageNetRoot(data) ? join(data, 'train') : data);
      const bar = progressBar('crops', 2 * samples, process.stderr, Boolean(args.values.quiet));
      const started = Date.now();
      const s = await estimateChannelStats(list, {
        samples,
        seed: intOption(args, 'seed', 0) ?? 1,
        imageSize,
        crop: { channels, height: crop, width: crop },
        workers: intOption(args, 'workers') ?? defaultWorkerCount(),
        onProgress: (done, total) => bar.update(done, { of: String(total) }),
      });
      bar.finish(`estimated from 2 × ${samples} crops (${crop}×${crop} of images scaled to ${imageSize}) of ${list.files.length} images in ${list.classes.length} classes (${list.dir}), ${((Date.now() - started) / 1000).toFixed(1)} s`);
      if (s.skipped.count > 0) process.stderr.write(`skipped ${s.skipped.count} draws of unreadable files (each replaced): ${[...s.skipped.files.keys()].slice(0, 5).join(', ')}${s.skipped.files.size > 5 ? ', …' : ''}\n`);
      process.stdout.write(formatTransform(s) + '\n');
      return 0;
    } catch (e) {
      if (e instanceof DataLayoutError) {
        process.stderr.write(`nincc stats: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};
