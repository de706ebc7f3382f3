// Resolves a `FILE|DIR` argument: a built artifact directory, or a spec that is built (cached) first.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildArtifact } from '../compiler/build.js';
import { UsageError } from './command.js';
import { requireModel } from './spec-file.js';

/** A built artifact directory as given, or a spec built (cached) for the device that will run it. */
export function resolveArtifact(arg: string, options: { maxBatch?: number; outDir?: string; quiet?: boolean; device?: string } = {}): string {
  if (!existsSync(arg)) throw new UsageError(`${arg}: no such file or directory`);
  if (statSync(arg).isDirectory()) {
    if (!existsSync(join(arg, 'plan.json'))) throw new UsageError(`${arg}: not an artifact directory (no plan.json); build one with 'nincc build SPEC -o DIR'`);
    return arg;
  }
  const { model, source } = requireModel(arg);
  // emu and cuda run the generated CUDA: a spec given for them is built for that target, into its own directory.
  const target = options.device === 'emu' || options.device === 'cuda' ? options.device : 'cpu';
  const outDir = options.outDir ?? `build/${model.name}${target === 'cpu' ? '' : `-${target}`}`;
  const log = options.quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`);
  buildArtifact(model, source, { outDir, target, ...(options.maxBatch ? { maxBatch: options.maxBatch } : {}), log });
  return outDir;
}
