// `nincc eval DIR --data …`: top-1 and top-5 on Fashion-MNIST's test split or a folder of class
// directories (center crops), and exactly how many images were scored.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { load, type Device, type Model } from '../../runtime/model.js';
import { inMemoryEvalSource, isFashionMnistData, loadLabelledImages, type SkipReport } from '../../runtime/dataset.js';
import { evaluateSource, nonFiniteProblem, type Scores } from '../../runtime/scoring.js';
import { defaultWorkerCount } from '../../runtime/imagenet/decode-pool.js';
import { CLASS_LIST_FILE, DataLayoutError, isImageNetRoot, listImageFolder, openImageNetFolder, readClassList, type ImageList } from '../../runtime/imagenet/folder.js';
import { imageInput, openImageSources } from '../../runtime/imagenet/model-input.js';
import { INDEX_FILE, isPackedDataset } from '../../runtime/imagenet/pack-format.js';
import { checkPackedImageSize, openPackedDataset, type PackedDataset } from '../../runtime/imagenet/packed.js';
import { intOption, onePositional, stringOption, UsageError, type Command, type ParsedArgs } from '../command.js';
import { checkFashionInput, inputOption, INPUT_HELP, prepareArtifact } from '../artifact-arg.js';

interface Scored {
  readonly r: Scores;
  readonly name: string;
  readonly skipped?: SkipReport;
  readonly warned?: SkipReport;
}

/**
 * The class folder to score and its labels. An ImageNet root means its val/ labelled by its train/
 * classes; a bare class folder takes its labels from --classes, else the classes.txt that
 * `nincc train` wrote beside the weights, else its own sorted directories.
 */
function evalList(data: string, weights: string | undefined, classesArg: string | undefined): { list: ImageList; labelsFrom: string; packed?: PackedDataset } {
  if (isPackedDataset(data)) {
    const packed = openPackedDataset(data);
    return { list: packed.val, labelsFrom: `${join(data, INDEX_FILE)} (its classes)`, packed };
  }
  if (isImageNetRoot(data)) return { list: openImageNetFolder(data).val, labelsFrom: join(data, 'train') };
  const beside = weights ? join(dirname(weights), CLASS_LIST_FILE) : undefined;
  const file = classesArg ?? (beside && existsSync(beside) ? beside : undefined);
  if (file) return { list: listImageFolder(data, readClassList(file)), labelsFrom: file };
  return { list: listImageFolder(data), labelsFrom: `the sorted directories of ${data}` };
}

async function scoreImageFolder(model: Model, data: string, args: ParsedArgs, weights: string | undefined): Promise<Scored> {
  const { list, labelsFrom, packed } = evalList(data, weights, stringOption(args, 'classes'));
  if (list.skipped.length > 0) {
    const listed = args.values.verbose === true;
    process.stderr.write(`note: ${list.skipped.length} entr${list.skipped.length === 1 ? 'y' : 'ies'} under ${list.dir} ${list.skipped.length === 1 ? 'is' : 'are'} not image files and ${listed ? 'were' : 'are'} left out${listed ? ':' : ' (--verbose lists them)'}\n`);
    if (listed) for (const e of list.skipped) process.stderr.write(`  ${e.path}: ${e.reason}\n`);
  }
  if (list.classes.length !== model.info.classes) {
    throw new DataLayoutError(`${list.classes.length} classes (from ${labelsFrom}) but model ${model.info.model} has ${model.info.classes} outputs; pass --classes FILE (the classes.txt of the training run)`);
  }
  const g = imageInput(model.info.input, model.plan.imageSize, model.plan.transform, model.plan.imageInput);
  if (g.warning) process.stderr.write(`warning: ${g.warning}\n`);
  if (packed) checkPackedImageSize(packed, g.imageSize);
  const s = openImageSources(g, { val: list }, { workers: intOption(args, 'workers') ?? defaultWorkerCount(), prefetch: 2, sampling: 'balanced', ...(packed ? { shards: packed.shards } : {}) });
  try {
    const r = await evaluateSource(model, s.val);
    return { r, name: list.dir, skipped: s.val.takeSkipped(), warned: s.val.takeWarnings() };
  } finally {
    await s.pool.close();
  }
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Evaluate a model on the test split: prints top-1, top-5, the mean NLL and the number of images scored (every image, no partial batch dropped).',
  usage: 'DIR|FILE --data fashion-mnist|PATH [--weights W] [--classes FILE] [--device cpu] [--input u8|f32] [--seed S] [--json] [--verbose]',
  details:
    "Without --weights the parameters are initialised by Torch7's rules from --seed (default 1), with a warning. An image whose class scores are not all finite is never a hit; any such image makes the exit status 1, naming the first.\n" +
    "PATH may be a folder of class directories (e.g. imagenet/val): images are center-cropped as donkey.lua's test hook did. Labels follow --classes, else the classes.txt beside --weights, else the folder's sorted directories. Only regular files named .JPEG/.jpg/.png/.ppm/.bmp are read (a named pipe or device never is); unreadable files are counted and not scored, damaged ones that still decode are scored with a warning.\n" +
    "PATH may also be a dataset 'nincc pack' wrote: its val split is scored, labelled by the classes in its index.",
  options: {
    data: { type: 'string', value: 'DATA', help: "'fashion-mnist', a directory of Fashion-MNIST IDX files, a folder of class directories, an ImageNet folder (its val/ is used) or a packed dataset (its val split)" },
    weights: { type: 'string', value: 'W', help: 'a safetensors checkpoint (from nincc train or import)' },
    classes: { type: 'string', value: 'FILE', help: "class names, one per line in label order (default: classes.txt beside --weights)" },
    workers: { type: 'string', value: 'N', help: `decode worker threads for image folders (default ${defaultWorkerCount()})` },
    device: { type: 'string', value: 'DEV', help: 'cpu (default), emu (the generated CUDA on the SIMT emulator) or cuda; a spec FILE is built for it' },
    input: { type: 'string', value: 'T', help: INPUT_HELP },
    seed: { type: 'string', value: 'S', help: 'init seed when --weights is absent (default 1)' },
    json: { type: 'boolean', help: 'print the result as JSON' },
    verbose: { type: 'boolean', help: 'list the entries of an image folder that are left out (not regular image files)' },
  },
  async run(args) {
    const data = stringOption(args, 'data');
    if (!data) throw new UsageError('--data is required');
    const target = onePositional(args, evalCommand, 'artifact directory');
    if (data !== 'fashion-mnist' && !existsSync(data)) throw new UsageError(`--data ${data}: no such file or directory`);
    const input = inputOption(args);
    const fashion = isFashionMnistData(data);
    if (fashion) checkFashionInput(input);
    const dir = await prepareArtifact(target, { device: stringOption(args, 'device') ?? 'cpu', ...(input ? { input } : {}), ...(fashion ? { floatData: 'Fashion-MNIST' } : { imageData: true }) });
    const weights = stringOption(args, 'weights');
    const seed = intOption(args, 'seed', 0) ?? 1;
    const model = await load(dir, { device: (stringOption(args, 'device') ?? 'cpu') as Device, seed, ...(weights ? { weights } : {}) });
    try {
      let scored: Scored;
      if (fashion) {
        const set = loadLabelledImages(data, 'test', model.plan.transform);
        scored = { r: await evaluateSource(model, inMemoryEvalSource(set)), name: set.name };
      } else {
        scored = await scoreImageFolder(model, data, args, weights);
      }
      const { r, name, skipped, warned } = scored;
      if (args.values.json) process.stdout.write(JSON.stringify({ top1: r.top1, top5: r.top5, loss: r.loss, count: r.count, nonFinite: r.nonFinite, ...(skipped ? { skipped: skipped.count } : {}), ...(warned ? { warned: warned.count } : {}) }) + '\n');
      else {
        const skips = skipped && skipped.count > 0 ? `; ${skipped.count} unreadable file${skipped.count === 1 ? '' : 's'} not scored` : '';
        const bad = r.nonFinite > 0 ? `; ${r.nonFinite} with non-finite scores, counted as misses` : '';
        process.stdout.write(`top-1 ${(100 * r.top1).toFixed(2)}%  top-5 ${(100 * r.top5).toFixed(2)}%  loss ${r.loss.toFixed(4)}  (${r.count} images of ${name}${skips}${bad})\n`);
      }
      if (skipped && skipped.count > 0) for (const [f, why] of skipped.files) process.stderr.write(`skipped ${f}: ${why}\n`);
      if (warned && warned.count > 0) {
        process.stderr.write(`warning: ${warned.count} image${warned.count === 1 ? '' : 's'} scored although damaged (decoded past the decoder's warning):\n`);
        for (const [f, why] of warned.files) process.stderr.write(`  ${f}: ${why}\n`);
      }
      // Said with the result it qualifies (a setup error before scoring stays the only message).
      if (!weights) process.stderr.write(`warning: no --weights: scored untrained parameters initialised from seed ${seed}, not a trained model\n`);
      const problem = nonFiniteProblem(r, name);
      if (problem) {
        process.stderr.write(`nincc eval: ${problem}${weights ? ` (${weights})` : ''}\n`);
        return 1;
      }
      return 0;
    } catch (e) {
      if (e instanceof DataLayoutError) {
        process.stderr.write(`nincc eval: ${e.message}\n`);
        return 1;
      }
      throw e;
    } finally {
      model.dispose();
    }
  },
};
