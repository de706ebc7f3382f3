// Resolves a `FILE|DIR` argument: a built artifact directory, or a spec that is built (cached) first;
// and the device a command runs it on.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildArtifact } from '../compiler/build.js';
import { PRECISIONS, type Precision } from '../compiler/ir.js';
import { runBuildJob, SpecError as BuildSpecError } from '../runtime/build.js';
import type { Device } from '../runtime/model.js';
import { stringOption, UsageError, type ParsedArgs } from './command.js';
import { readSource, requireModel, SpecError } from './spec-file.js';

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

/** --input: u8 or absent (float32). */
export function inputOption(args: ParsedArgs): 'u8' | undefined {
  const v = stringOption(args, 'input');
  if (v === undefined || v === 'f32') return undefined;
  if (v !== 'u8') throw new UsageError(`--input must be u8 or f32, got '${v}'`);
  return v;
}

export const INPUT_HELP =
  'u8: the artifact takes uint8 N×H×W×C images and its first conv normalises them with the spec\'s transform (image folders and packed datasets then decode to bytes; docs/design.md §4.2); f32 (default): normalised float32 N×C×H×W';

/** An artifact directory given with --input must have been built with it. */
function checkInput(dir: string, input: 'u8' | undefined): void {
  if (input === undefined) return;
  const built = (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { imageInput?: unknown }).imageInput !== undefined;
  if (!built) throw new UsageError(`${dir} takes float32 images, not uint8: rebuild it from the spec with --input u8`);
}

/** The help text of --precision, one for every command that builds. */
export const PRECISION_HELP =
  "the GEMM kernels' arithmetic on emu/cuda, overriding the spec's train block `precision`: fp32 (default; the exact mode), " +
  'bf16 (the convolutions, forward and gradients, on bf16 tensor cores, fp32 accumulation; docs/design.md), tf32 (no kernels yet). The cpu kernels always compute in fp32';

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

/** A built artifact directory as given, or a spec built (cached) for the device that will run it. */
export function resolveArtifact(arg: string, options: { maxBatch?: number; outDir?: string; quiet?: boolean; device?: string; precision?: Precision; input?: 'u8' } = {}): string {
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file or directory`);
  if (statSync(arg).isDirectory()) {
    if (!existsSync(join(arg, 'plan.json'))) throw new UsageError(`${arg}: not an artifact directory (no plan.json); build one with 'nincc build SPEC -o DIR'`);
    checkPrecision(arg, options.precision);
    checkInput(arg, options.input);
    return arg;
  }
  const { model, source } = requireModel(arg);
  // emu and cuda run the generated CUDA: a spec given for them is built for that target, into its own directory.
  const target = options.device === 'emu' || options.device === 'cuda' ? options.device : 'cpu';
  const outDir = options.outDir ?? `build/${model.name}${target === 'cpu' ? '' : `-${target}`}${options.input ? `-${options.input}` : ''}`;
  const log = options.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
  buildArtifact(model, source, { outDir, target, ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}), ...(options.precision ? { precision: options.precision } : {}), ...(options.input ? { input: options.input } : {}), log });
  return outDir;
}

/**
 * resolveArtifact with the build in a worker thread (runtime/build.ts), so the event loop keeps
 * turning (signals, progress) while g++ runs. Spec errors are printed as `nincc check` prints them.
 */
export async function prepareArtifact(arg: string, options: { maxBatch?: number; outDir?: string; quiet?: boolean; device?: string; precision?: Precision; input?: 'u8' } = {}): Promise<string> {
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file or directory`);
  if (statSync(arg).isDirectory()) return resolveArtifact(arg, options);
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
      ...(options.input ? { input: options.input } : {}),
      // emu/cuda and uint8 builds each get their own directory beside the cpu float one.
      ...(target !== 'cpu' || options.input ? { outDirSuffix: `${target === 'cpu' ? '' : `-${target}`}${options.input ? `-${options.input}` : ''}` } : {}),
    }, log);
    if (r.warningReport) process.stderr.write(`${r.warningReport}\n`);
    return r.dir;
  } catch (e) {
    if (e instanceof BuildSpecError) {
      process.stderr.write(`${e.report}\n`);
      throw new SpecError(e.diagnostics.filter((d) => d.severity === 'error').length);
    }
    throw e;
  }
}
