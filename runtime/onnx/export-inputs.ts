// Where an ONNX export's inputs come from: the layer IR from an artifact's model.json, and the
// tensors from a safetensors checkpoint (checked tensor by tensor) or from the seeded Torch7 init.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ShapedModel } from '../../compiler/ir.js';
import { lowerParams } from '../../compiler/lower/params.js';
import type { TensorEntry } from '../../compiler/lower/program-ir.js';
import { initialValues } from '../init.js';
import { readSafetensors } from '../io/safetensors.js';

/** A problem with what the user pointed export at (artifact, checkpoint): shown without a stack. */
export class ExportInputError extends Error {}

interface ModelFile {
  readonly format: 'nincc-model';
  readonly version: 1;
  readonly sourceHash: string;
  readonly model: ShapedModel;
}

/** The shaped model that `nincc build` stored beside plan.json. */
export function readArtifactModel(dir: string): ShapedModel {
  const path = join(dir, 'model.json');
  if (!existsSync(path)) {
    throw new ExportInputError(`${dir}: no model.json (the artifact predates ONNX export); rebuild it with 'nincc build SPEC -o ${dir}', or export from the spec file`);
  }
  let file: ModelFile;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as ModelFile;
  } catch (e) {
    throw new ExportInputError(`${path}: not readable JSON (${(e as Error).message})`);
  }
  if (file?.format !== 'nincc-model' || file.version !== 1 || !Array.isArray(file.model?.layers)) {
    throw new ExportInputError(`${path}: not a nincc-model version 1 file`);
  }
  const planPath = join(dir, 'plan.json');
  if (existsSync(planPath)) {
    const plan = JSON.parse(readFileSync(planPath, 'utf8')) as { sourceHash?: string };
    // model.json is written just before plan.json: a build that stopped between them leaves them apart.
    if (plan.sourceHash !== file.sourceHash) throw new ExportInputError(`${dir}: model.json and plan.json come from different builds; rebuild the artifact`);
  }
  return file.model;
}

/** Every tensor the model has (parameters, then running statistics), named and shaped as nincc does. */
export function modelTensors(model: ShapedModel): readonly TensorEntry[] {
  const layout = lowerParams(model);
  return [...layout.params, ...layout.state];
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Torch7-rule init from a seed: the same values as `load(dir, { seed })` (runtime/init.ts). */
export function tensorsFromSeed(model: ShapedModel, seed: number): Map<string, Float32Array> {
  if (!Number.isInteger(seed) || seed < 0) throw new ExportInputError(`seed must be a non-negative integer, got ${seed}`);
  return new Map(modelTensors(model).map((t) => [t.name, initialValues({ name: t.name, size: sizeOf(t.shape), init: t.init }, seed)]));
}

/** A checkpoint's tensors; every tensor of the model must be there as F32 of its shape, and nothing else. */
export function tensorsFromCheckpoint(model: ShapedModel, path: string): Map<string, Float32Array> {
  let contents: ReturnType<typeof readSafetensors>;
  try {
    contents = readSafetensors(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.code ? err.message : undefined;
    // decodeSafetensors' own messages already start with the path.
    throw new ExportInputError(why ? `cannot read weights ${path}: ${why}` : `cannot read weights ${err.message}`);
  }
  const problems: string[] = [];
  const out = new Map<string, Float32Array>();
  const expected = modelTensors(model);
  for (const t of expected) {
    const s = contents.tensors.get(t.name);
    if (!s) problems.push(`missing ${t.name} (${t.shape.join('×')})`);
    else if (s.dtype !== 'F32') problems.push(`${t.name} is ${s.dtype}, expected F32`);
    else if (s.shape.join('×') !== t.shape.join('×')) problems.push(`${t.name} is ${s.shape.join('×')}, expected ${t.shape.join('×')}`);
    else out.set(t.name, s.data as Float32Array);
  }
  const known = new Set(expected.map((t) => t.name));
  const extra = [...contents.tensors.keys()].filter((k) => !known.has(k) && !k.startsWith('optimizer.'));
  if (extra.length > 0) problems.push(`tensors model ${model.name} does not have: ${extra.slice(0, 8).join(', ')}${extra.length > 8 ? ', …' : ''}`);
  if (problems.length > 0) {
    const shown = problems.length > 12 ? [...problems.slice(0, 12), `… and ${problems.length - 12} more`] : problems;
    throw new ExportInputError(`weights ${path} do not fit model ${model.name}:\n  ${shown.join('\n  ')}`);
  }
  return out;
}
