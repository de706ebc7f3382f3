// Resolves a `FILE|DIR` argument: a built artifact directory, or a spec that is built (cached) first;
// and the device a command runs it on.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PRECISIONS, type Precision } from '../compiler/ir.js';
import { runBuildJob, SpecError as BuildSpecError } from '../runtime/build.js';
import type { Device } from '../runtime/model.js';
import { stringOption, UsageError, type ParsedArgs } from './command.js';
import { readSource, SpecError } from './spec-file.js';

const DEVICES: readonly Device[] = ['cpu', 'emu', 'cuda'];

/** --device, checked before anything is built; undefined when not given. */
export function deviceOption(args: ParsedArgs): Device | undefined {
  const d = stringOption(args, 'device');
  if (d === undefined) return undefined;
  if (!(DEVICES as readonly string[]).includes(d)) throw new UsageError(`unknown device '${d}' (available: ${DEVICES.join(', ')})`);
  return d as Device;
}

/** --precision, checked before anything is built; undefined when not given (the spec's train block decides). */
export function precisionOption(args: ParsedArgs): Precision | undefined {
  const p = stringOption(args, 'precision');
  if (p === undefined) return undefined;
  const known = PRECISIONS.find((q) => q === p);
  if (!known) throw new UsageError(`unknown precision '${p}' (available: ${PRECISIONS.join(', ')})`);
  return known;
}

/** --input as the user gave it; absent, the command decides (uint8 for image data where the model can take it). */
export type InputChoice = 'u8' | 'f32';

export function inputOption(args: ParsedArgs): InputChoice | undefined {
  const v = stringOption(args, 'input');
  if (v === undefined) return undefined;
  if (v !== 'u8' && v !== 'f32') throw new UsageError(`--input must be u8 or f32, got '${v}'`);
  return v;
}

/** What the two --input values mean, for every command that takes the option. */
const INPUT_KINDS =
  'u8: the artifact takes uint8 N×H×W×C images and its first conv normalises them with the spec\'s transform, so the loader writes bytes and no float image (docs/design.md §4.2); ' +
  'f32: normalised float32 N×C×H×W';

export const INPUT_HELP =
  `${INPUT_KINDS}. Default for a spec FILE: u8 with image folders, packed datasets and image files (float32, with a note saying why, when the first layer is not a conv), f32 otherwise; a DIR runs as it was built`;

/** nincc build has no data to go by: float32 stays its default. */
export const BUILD_INPUT_HELP =
  `${INPUT_KINDS}. Default f32: build sees no data, and an artifact's load().infer/trainStep take Float32Array by default; train, eval and infer given a spec FILE and image data build u8 themselves`;

/** Fashion-MNIST is read as floats: --input u8 there is a usage error (train, eval). */
export function checkFashionInput(input: InputChoice | undefined): void {
  if (input === 'u8') throw new UsageError('--input u8 applies to ImageNet folders and packed datasets (their crops are decoded as bytes); Fashion-MNIST is read as floats');
}

/** What the artifact directory takes: whether plan.json has imageInput (uint8 N×H×W×C). */
function takesBytes(dir: string): boolean {
  return (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { imageInput?: unknown }).imageInput !== undefined;
}

/** The one line said when image data meets a float32 directory: it is run as float, not rebuilt. */
export const floatDirectoryNote = (dir: string) => `${dir} takes float32 images (built without --input u8): the loader writes normalised float crops; build it with --input u8 for uint8 batches`;

/** A directory runs as built: --input must agree with it; image data on a float32 directory is said once, never rebuilt. */
function checkInput(dir: string, input: InputChoice | undefined, imageData: boolean, floatData: string | undefined, note: (line: string) => void): void {
  const bytes = takesBytes(dir);
  if (floatData !== undefined && bytes) throw new UsageError(`${dir} takes uint8 images (built with --input u8), but ${floatData} is float32 N×C×H×W: give the spec, or a directory built without --input u8`);
  if (input === 'u8' && !bytes) throw new UsageError(`${dir} takes float32 images, not uint8: rebuild it from the spec with --input u8`);
  if (input === 'f32' && bytes) throw new UsageError(`${dir} takes uint8 images (built with --input u8), not float32: rebuild it from the spec with --input f32`);
  if (input === undefined && imageData && !bytes) note(floatDirectoryNote(dir));
}

/**
 * How prepareArtifact builds or checks: `input` as given, `imageData` when the data is image files (uint8 by
 * default), `floatData` naming data that can only be float32 (a uint8 directory is then refused), `note` for its one-line notes.
 */
export interface ArtifactOptions {
  readonly maxBatch?: number;
  readonly outDir?: string;
  readonly quiet?: boolean;
  readonly device?: string;
  readonly precision?: Precision;
  readonly input?: InputChoice;
  readonly imageData?: boolean;
  readonly floatData?: string;
  readonly note?: (line: string) => void;
  /** the GPU an emu/cuda build's weight-gradient split counts are chosen for (compiler/lower/wgrad-splits-waves.ts) */
  readonly gpu?: string;
  /**
   * A spec built for emu/cuda leaves kernels.cpu.so out: for the commands that only ever run the artifact on that
   * device (profile, tune), whose cpu library's g++ -O3 compile was most of the build. A later build of the same
   * directory with it (train, infer --device emu) compiles only the cpu library: the emu library is a cache hit.
   */
  readonly withoutCpuLibrary?: boolean;
}

const stderrNote = (line: string) => process.stderr.write(`note: ${line}\n`);

/** The help text of --precision, one for every command that builds. */
export const PRECISION_HELP =
  "the GEMM kernels' arithmetic on emu/cuda, overriding the spec's train block `precision`: fp32 (default; the exact mode), " +
  'bf16 (the convolutions and linear layers, forward and gradients, on bf16 tensor cores, fp32 accumulation; docs/design.md), tf32 (no kernels yet). The cpu kernels always compute in fp32';

/** An artifact directory given with --precision must have been built with it: a directory is run as built. */
function checkPrecision(dir: string, precision: Precision | undefined): void {
  if (precision === undefined) return;
  const built = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { precision?: Precision }).precision ?? 'fp32';
  if (built !== precision) throw new UsageError(`${dir} was built with precision ${built}, not ${precision}: rebuild it from the spec with --precision ${precision}`);
}

/** The device an artifact was built for: cuda when it has a fatbin for the cuda device, emu when it has emu kernels, else cpu. */
export function artifactDevice(dir: string): Device {
  const libraries = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { libraries?: Record<string, string> }).libraries ?? {};
  return 'cuda' in libraries ? 'cuda' : 'emu' in libraries ? 'emu' : 'cpu';
}

/** An artifact directory as given, checked against the options (precision, --input, the data's kind). */
function checkArtifactDir(dir: string, options: ArtifactOptions): string {
  if (!existsSync(join(dir, 'plan.json'))) throw new UsageError(`${dir}: not an artifact directory (no plan.json); build one with 'nincc build SPEC -o DIR'`);
  checkPrecision(dir, options.precision);
  checkInput(dir, options.input, options.imageData === true, options.floatData, options.note ?? stderrNote);
  return dir;
}

/**
 * A built artifact directory as given (checked), or a spec built (cached) for the device that will run it, in a
 * worker thread (runtime/build.ts), so the event loop keeps turning (signals, progress) while g++ runs. Spec errors are printed as `nincc check` prints them.
 */
export async function prepareArtifact(arg: string, options: ArtifactOptions = {}): Promise<string> {
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file or directory`);
  if (statSync(arg).isDirectory()) return checkArtifactDir(arg, options);
  const target = options.device === 'emu' || options.device === 'cuda' ? options.device : 'cpu';
  const log = options.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
  try {
    const source = readSource(arg);
    const r = await runBuildJob({
      source,
      file: arg,
      target,
      ...(options.outDir ? { outDir: options.outDir } : {}),
      ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}),
      ...(options.precision ? { precision: options.precision } : {}),
      ...(options.gpu && target !== 'cpu' ? { gpu: options.gpu } : {}),
      ...(options.withoutCpuLibrary && target !== 'cpu' ? { withoutCpuLibrary: true } : {}),
      ...(options.input === 'u8' ? { input: 'u8' as const } : {}),
      ...(options.input === undefined && options.imageData ? { preferU8: true } : {}),
      // emu/cuda and uint8 builds each get their own directory beside the cpu float one (the worker adds -u8).
      ...(target !== 'cpu' ? { outDirSuffix: `-${target}` } : {}),
    }, log);
    if (r.warningReport) process.stderr.write(`${r.warningReport}\n`);
    if (r.floatBecause) (options.note ?? stderrNote)(`${r.dir} is built for float32 images: model ${r.plan.model} cannot take uint8 images: ${r.floatBecause}`);
    return r.dir;
  } catch (e) {
    if (e instanceof BuildSpecError) {
      process.stderr.write(`${e.report}\n`);
      throw new SpecError(e.diagnostics.filter((d) => d.severity === 'error').length);
    }
    throw e;
  }
}
