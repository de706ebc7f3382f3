// `nincc train FILE|DIR --data …`: trains with the spec's recipe, evaluating and checkpointing every epoch.
import { join } from 'node:path';
import { load, type Device } from '../../runtime/model.js';
import { loadLabelledImages } from '../../runtime/dataset.js';
import { train, TrainingError } from '../../runtime/trainer.js';
import { intOption, onePositional, stringOption, UsageError, type Command } from '../command.js';
import { resolveArtifact } from '../artifact-arg.js';

export const trainCommand: Command = {
  name: 'train',
  summary: "Train a model with its spec's recipe (batch, epochs, SGD with momentum, the lr/wd regime). Prints a progress bar, evaluates top-1/top-5 on the test split and writes an atomic checkpoint after every epoch.",
  usage: 'FILE|DIR --data fashion-mnist|PATH [-o RUN_DIR] [--epochs N] [--batch N] [--device cpu] [--seed S] [--resume]',
  details: 'FILE is a .model spec (built first, cached) or DIR a built artifact. RUN_DIR receives checkpoint.safetensors and log.jsonl (one JSON line per epoch).',
  options: {
    data: { type: 'string', value: 'DATA', help: "'fashion-mnist' (the system copy, see scripts/install-deps.sh) or a directory of Fashion-MNIST IDX files" },
    out: { type: 'string', short: 'o', value: 'RUN_DIR', help: 'where checkpoints and the log go (default: runs/<model>)' },
    epochs: { type: 'string', value: 'N', help: "number of epochs (default: the spec's train block)" },
    batch: { type: 'string', value: 'N', help: "batch size (default: the spec's train block)" },
    device: { type: 'string', value: 'DEV', help: 'cpu (default)' },
    seed: { type: 'string', value: 'S', help: 'seed for init, shuffling and dropout (default 1)' },
    limit: { type: 'string', value: 'N', help: 'use only the first N training images' },
    resume: { type: 'boolean', help: 'continue from RUN_DIR/checkpoint.safetensors (the last finished epoch)' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
  },
  async run(args) {
    const target = onePositional(args, trainCommand, 'spec file or artifact directory');
    const data = stringOption(args, 'data');
    if (!data) throw new UsageError("--data is required (e.g. --data fashion-mnist)");
    const batchArg = intOption(args, 'batch');
    const dir = resolveArtifact(target, { ...(batchArg ? { maxBatch: batchArg } : {}), quiet: Boolean(args.values.quiet) });
    const model = await load(dir, { device: (stringOption(args, 'device') ?? 'cpu') as Device, seed: intOption(args, 'seed', 0) ?? 1 });
    try {
      const recipe = model.plan.train;
      const transform = model.plan.transform;
      const limit = intOption(args, 'limit');
      const trainSet = loadLabelledImages(data, 'train', transform, limit);
      const testSet = loadLabelledImages(data, 'test', transform);
      if (trainSet.shape.join('x') !== model.info.input.join('x')) throw new UsageError(`${data} has ${trainSet.shape.join('x')} images but the model's input is ${model.info.input.join('x')}`);
      const runDir = stringOption(args, 'out') ?? join('runs', model.info.model);
      const epochs = intOption(args, 'epochs') ?? recipe?.epochs ?? 1;
      const batch = batchArg ?? recipe?.batch ?? Math.min(64, model.maxBatch);
      process.stderr.write(`training ${model.info.model} on ${trainSet.count} images (${trainSet.name}), testing on ${testSet.count}; ${epochs} epochs of batch ${batch}; run directory ${runDir}\n`);
      const records = await train(model, trainSet, testSet, {
        epochs, batch, regime: recipe?.regime ?? [], momentum: recipe?.optimizer.momentum ?? 0.9, seed: intOption(args, 'seed', 0) ?? 1,
        runDir, resume: Boolean(args.values.resume), quiet: Boolean(args.values.quiet),
      });
      const last = records[records.length - 1];
      if (last) process.stdout.write(`top-1 ${(100 * last.top1).toFixed(2)}%  top-5 ${(100 * last.top5).toFixed(2)}%  (${last.evaluated} test images, after epoch ${last.epoch}); checkpoint ${join(runDir, 'checkpoint.safetensors')}\n`);
      return 0;
    } catch (e) {
      if (e instanceof TrainingError) {
        process.stderr.write(`nincc train: ${e.message}\n`);
        return 1;
      }
      throw e;
    } finally {
      model.dispose();
    }
  },
};
