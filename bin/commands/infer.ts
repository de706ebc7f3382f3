// `nincc infer DIR (IMAGE… | --npy FILE)`: the top-k classes of each image by name and probability,
// or the raw outputs as .npy.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { load, type Device, type Images } from '../../runtime/model.js';
import { decodeImageBytes, decodeImageFile } from '../../runtime/data/decode-image.js';
import { readNpy, writeNpy } from '../../runtime/io/npy.js';
import { CLASS_LIST_FILE, readClassList } from '../../runtime/imagenet/folder.js';
import { intOption, stringOption, UsageError, type Command } from '../command.js';
import { artifactDevice, deviceOption, inputOption, INPUT_HELP, precisionOption, prepareArtifact, PRECISION_HELP } from '../artifact-arg.js';

export const inferCommand: Command = {
  name: 'infer',
  summary: 'Run inference: prints the top classes of each image with their probabilities, or writes the raw network output (N×classes float32) with -o OUT.npy.',
  usage: 'DIR|FILE (IMAGE… | --npy FILE) [--weights W] [--classes FILE] [--top K] [-o OUT.npy] [--device DEV] [--precision P] [--input u8|f32] [--seed S]',
  details:
    "IMAGE files (JPEG, PNG, …) are scaled so the short side is the spec's imageSize, center-cropped and normalised with its transform; a uint8 artifact (--input u8, the default when a spec FILE is given image files) takes the crops' bytes and normalises in its first conv. --npy takes float32 N×C×H×W already normalised (not for --input u8 artifacts). " +
    'Without --weights the parameters are initialised by Torch7\'s rules from --seed (default 1). ' +
    `Class names come from --classes, else from the ${CLASS_LIST_FILE} beside the weights (nincc train writes one for image folders), else classes are printed by index. ` +
    'Probabilities are exp() of the output when the network ends in logsoftmax, the output itself after softmax; other networks print raw scores.',
  options: {
    npy: { type: 'string', value: 'FILE', help: 'input images as a float32 N×C×H×W .npy file' },
    weights: { type: 'string', value: 'W', help: 'a safetensors checkpoint' },
    classes: { type: 'string', value: 'FILE', help: `class names, one per line (line i+1 names class i); default: ${CLASS_LIST_FILE} beside --weights` },
    top: { type: 'string', short: 'k', value: 'K', help: 'how many classes to print per image (default 5)' },
    out: { type: 'string', short: 'o', value: 'OUT.npy', help: 'write the raw outputs here instead of printing' },
    device: { type: 'string', value: 'DEV', help: "cpu, emu (the generated CUDA on the SIMT emulator) or cuda; default: the artifact's target (a spec FILE is built for cpu unless this says otherwise)" },
    precision: { type: 'string', value: 'P', help: PRECISION_HELP },
    input: { type: 'string', value: 'T', help: INPUT_HELP },
    seed: { type: 'string', value: 'S', help: 'init seed when --weights is absent (default 1)' },
  },
  async run(args) {
    const [target, ...images] = args.positionals;
    if (!target) throw new UsageError(`usage: nincc infer ${inferCommand.usage}`);
    // Every option is checked before anything is built or loaded.
    const npy = stringOption(args, 'npy');
    if ((npy === undefined) === (images.length === 0)) throw new UsageError('give either image files or --npy FILE (not both, not neither)');
    for (const f of [...images, ...(npy ? [npy] : [])]) if (!existsSync(f)) throw new UsageError(`${f}: no such file`);
    const weights = stringOption(args, 'weights');
    if (weights !== undefined && !existsSync(weights)) throw new UsageError(`--weights ${weights}: no such file`);
    const requested = deviceOption(args);
    const precision = precisionOption(args);
    const input = inputOption(args);
    if (npy && input === 'u8') throw new UsageError('--input u8 applies to image files (their crops are decoded as bytes); --npy takes float32 N×C×H×W');
    const top = intOption(args, 'top') ?? 5;
    const seed = intOption(args, 'seed', 0) ?? 1;
    const outFile = stringOption(args, 'out');
    const classNames = classList(stringOption(args, 'classes'), weights);

    // Image files take uint8 crops by default (a spec is built so, or says why not); --npy is float32.
    const dir = await prepareArtifact(target, { device: requested ?? 'cpu', ...(precision ? { precision } : {}), ...(input ? { input } : {}), ...(npy ? { floatData: '--npy' } : { imageData: true }) });
    const device: Device = requested ?? artifactDevice(dir);
    const model = await load(dir, { device, seed, ...(weights ? { weights } : {}) });
    try {
      const [c, h, w] = model.info.input;
      const classes = model.outputElements;
      if (classNames && classNames.names.length !== classes) throw new UsageError(`${classNames.file} names ${classNames.names.length} classes but the model has ${classes}`);
      let input: Images;
      let names: string[];
      if (npy) {
        const a = readNpy(npy);
        if (a.dtype !== '<f4') throw new UsageError(`${npy}: expected float32 (<f4) data, got ${a.dtype}`);
        if (a.shape.length !== 4 || a.shape[1] !== c || a.shape[2] !== h || a.shape[3] !== w) {
          throw new UsageError(`${npy}: shape [${a.shape.join(', ')}] does not match the model input N×${c}×${h}×${w}`);
        }
        input = a.data as Float32Array;
        names = Array.from({ length: a.shape[0] }, (_, i) => `${npy}[${i}]`);
      } else {
        const geometry = { channels: c, height: h, width: w, ...(model.plan.imageSize ? { imageSize: model.plan.imageSize } : {}), ...(model.plan.transform ? { transform: model.plan.transform } : {}) };
        // A uint8 artifact (plan.json imageInput) takes the crops' bytes; its first conv normalises them.
        const bytes = model.plan.imageInput !== undefined;
        const decoded = await Promise.all(images.map((f) => (bytes ? decodeImageBytes(f, geometry) : decodeImageFile(f, geometry))));
        const batch = bytes ? new Uint8Array(decoded.length * c * h * w) : new Float32Array(decoded.length * c * h * w);
        decoded.forEach((d, i) => batch.set(d, i * d.length));
        input = batch;
        names = images;
      }
      const out = await model.infer(input);
      if (outFile) {
        writeNpy(outFile, { dtype: '<f4', shape: [names.length, ...model.info.output], data: out });
        process.stdout.write(`wrote ${outFile} (${names.length}×${model.info.output.join('×')} float32)\n`);
        return 0;
      }
      const ending = lastLayer(dir);
      names.forEach((name, i) => {
        const row = Array.from(out.subarray(i * classes, (i + 1) * classes));
        process.stdout.write(`${name}: ${topClasses(row, top, ending, classNames?.names).join('  ')}\n`);
      });
      return 0;
    } finally {
      await model.dispose();
    }
  },
};

/** The --classes file, or classes.txt beside the weights when there is one. */
function classList(given: string | undefined, weights: string | undefined): { file: string; names: string[] } | undefined {
  const file = given ?? (weights && existsSync(join(dirname(weights), CLASS_LIST_FILE)) ? join(dirname(weights), CLASS_LIST_FILE) : undefined);
  if (file === undefined) return undefined;
  try {
    return { file, names: readClassList(file) };
  } catch (e) {
    throw new UsageError(`--classes ${(e as Error).message}`);
  }
}

/** The network's last layer kind from the artifact's model.json (absent in artifacts without one). */
function lastLayer(dir: string): string | undefined {
  const path = join(dir, 'model.json');
  if (!existsSync(path)) return undefined;
  const layers = (JSON.parse(readFileSync(path, 'utf8')) as { model?: { layers?: { kind: string }[] } }).model?.layers;
  return layers?.[layers.length - 1]?.kind;
}

/** "name 97.31%" for the k best classes (probabilities), or "name (score 1.2345)" for raw outputs. */
export function topClasses(row: readonly number[], k: number, ending: string | undefined, names: readonly string[] | undefined): string[] {
  const label = (c: number) => names?.[c] ?? String(c);
  const best = row.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0]).slice(0, Math.min(k, row.length));
  if (ending === 'logsoftmax' || ending === 'softmax') {
    return best.map(([v, c]) => `${label(c)} ${((ending === 'logsoftmax' ? Math.exp(v) : v) * 100).toFixed(2)}%`);
  }
  return best.map(([v, c]) => `${label(c)} (score ${v.toFixed(4)})`);
}
