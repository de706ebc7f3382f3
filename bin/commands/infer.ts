// `nincc infer DIR (IMAGE… | --npy FILE)`: top-5 classes per image, or the raw outputs as .npy.
import { load, type Device } from '../../runtime/model.js';
import { decodeImageFile } from '../../runtime/data/decode-image.js';
import { readNpy, writeNpy } from '../../runtime/io/npy.js';
import { intOption, stringOption, UsageError, type Command } from '../command.js';
import { resolveArtifact } from '../artifact-arg.js';

export const inferCommand: Command = {
  name: 'infer',
  summary: 'Run inference: prints the top-5 classes of each image, or writes the raw network output (N×classes float32) with -o OUT.npy.',
  usage: 'DIR|FILE (IMAGE… | --npy FILE) [--weights W] [-o OUT.npy] [--device cpu] [--seed S]',
  details: 'IMAGE files (JPEG, PNG, …) are scaled so the short side is the spec\'s imageSize, center-cropped and normalised with its transform. --npy takes float32 N×C×H×W already normalised. Without --weights the parameters are initialised by Torch7\'s rules from --seed (default 1).',
  options: {
    npy: { type: 'string', value: 'FILE', help: 'input images as a float32 N×C×H×W .npy file' },
    weights: { type: 'string', value: 'W', help: 'a safetensors checkpoint' },
    out: { type: 'string', short: 'o', value: 'OUT.npy', help: 'write the raw outputs here instead of printing' },
    device: { type: 'string', value: 'DEV', help: 'cpu (default), emu (the generated CUDA on the SIMT emulator) or cuda; a spec FILE is built for it' },
    seed: { type: 'string', value: 'S', help: 'init seed when --weights is absent (default 1)' },
  },
  async run(args) {
    const [target, ...images] = args.positionals;
    if (!target) throw new UsageError(`usage: nincc infer ${inferCommand.usage}`);
    const npy = stringOption(args, 'npy');
    if ((npy === undefined) === (images.length === 0)) throw new UsageError('give either image files or --npy FILE (not both, not neither)');
    const dir = resolveArtifact(target, { device: stringOption(args, 'device') ?? 'cpu' });
    const weights = stringOption(args, 'weights');
    const model = await load(dir, { device: (stringOption(args, 'device') ?? 'cpu') as Device, seed: intOption(args, 'seed', 0) ?? 1, ...(weights ? { weights } : {}) });
    try {
      const [c, h, w] = model.info.input;
      let input: Float32Array;
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
        const decoded = await Promise.all(images.map((f) => decodeImageFile(f, geometry)));
        input = new Float32Array(decoded.length * c * h * w);
        decoded.forEach((d, i) => input.set(d, i * d.length));
        names = images;
      }
      const out = await model.infer(input);
      const classes = model.outputElements;
      const outFile = stringOption(args, 'out');
      if (outFile) {
        writeNpy(outFile, { dtype: '<f4', shape: [names.length, ...model.info.output], data: out });
        process.stdout.write(`wrote ${outFile} (${names.length}×${model.info.output.join('×')} float32)\n`);
        return 0;
      }
      names.forEach((name, i) => {
        const row = Array.from(out.subarray(i * classes, (i + 1) * classes));
        const top = row.map((v, k) => [v, k] as const).sort((a, b) => b[0] - a[0]).slice(0, Math.min(5, classes));
        process.stdout.write(`${name}: ${top.map(([v, k]) => `${k} (${v.toFixed(4)})`).join('  ')}\n`);
      });
      return 0;
    } finally {
      model.dispose();
    }
  },
};
