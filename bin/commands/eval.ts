// `nincc eval DIR --data …`: top-1 and top-5 on the test split, and how many images were scored.
import { load, type Device } from '../../runtime/model.js';
import { loadLabelledImages } from '../../runtime/dataset.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { resolveArtifact } from '../artifact-arg.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate a model on the test split: prints top-1, top-5, the mean NLL and the number of images scored (every image, no partial batch dropped).',
  usage: 'DIR|FILE --data fashion-mnist|PATH [--weights W] [--device cpu] [--seed S]',
  details: 'Without --weights the parameters are initialised by Torch7\'s rules from --seed (default 1).',
  options: {
    data: { type: 'string', value: 'DATA', help: "'fashion-mnist' or a directory of Fashion-MNIST IDX files" },
    weights: { type: 'string', value: 'W', help: 'a safetensors checkpoint (from nincc train or import)' },
    device: { type: 'string', value: 'DEV', help: 'cpu (default)' },
    seed: { type: 'string', value: 'S', help: 'init seed when --weights is absent (default 1)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  async run(args) {
    const data = stringOption(args, 'data');
    if (!data) throw new UsageError('--data is required');
    const dir = resolveArtifact(onePositional(args, evalCommand, 'artifact directory'));
    const weights = stringOption(args, 'weights');
    const model = await load(dir, { device: (stringOption(args, 'device') ?? 'cpu') as Device, seed: intOption(args, 'seed', 0) ?? 1, ...(weights ? { weights } : {}) });
    try {
      const set = loadLabelledImages(data, 'test', model.plan.transform);
      const r = await model.evaluate(set.images, set.labels);
      if (args.values.json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(`top-1 ${(100 * r.top1).toFixed(2)}%  top-5 ${(100 * r.top5).toFixed(2)}%  loss ${r.loss.toFixed(4)}  (${r.count} images of ${set.name})\n`);
      return 0;
    } finally {
      model.dispose();
    }
  },
};
