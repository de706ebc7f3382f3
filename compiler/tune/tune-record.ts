// The per-layer configuration record (issue #15): for each conv layer and pass, the choice of each per-layer
// knob, as plain data; what `nincc tune` writes into an artifact's tune.json and `nincc build --tuned` reads.
// A knob is one of the A/B switches of ablations.ts whose effect stays inside one layer's kernels, so its
// meaning is written there once; the record is the single place a per-layer choice lives.
import { createHash } from 'node:crypto';
import { ABLATIONS, type Ablation, type Ablations } from '../ablations.js';
import type { ShapedModel } from '../ir.js';
import type { KernelStep } from '../lower/program-ir.js';

/** The pass a conv kernel belongs to: its weight copy goes with the pass that reads it (they must agree on the layout). */
export type TunePass = 'forward' | 'dgrad' | 'wgrad';
export const TUNE_PASSES: readonly TunePass[] = ['forward', 'dgrad', 'wgrad'];

/** The per-layer knobs, each with the passes whose kernels it changes (the generators that read it in backends/cuda). */
export const TUNE_KNOBS = {
  stagedStores: ['forward', 'dgrad'],
  stagedFp32Stores: ['forward'],
  warp64Tiles: ['forward', 'dgrad', 'wgrad'],
  twinHalo: ['wgrad'],
  stemS2d: ['forward'],
} as const satisfies Partial<Record<Ablation, readonly TunePass[]>>;

export type TuneKnob = keyof typeof TUNE_KNOBS;
export const TUNE_KNOB_NAMES = Object.keys(TUNE_KNOBS) as TuneKnob[];

/** How a choice was made: timed on the GPU, or the profile model's prediction on emu. */
export type TuneHow = 'measured' | 'predicted';

/** One (layer, pass): its knobs' choices (true on, false off; an absent knob keeps the build's default). */
export type TuneChoice = { readonly [knob in TuneKnob]?: boolean };

/** What a build applies: "LAYER:PASS" (e.g. "4:wgrad", LAYER the Torch module index) → choice, and how they were chosen. */
export interface TunedChoices {
  readonly gpu: string;
  readonly how: TuneHow;
  readonly layers: Readonly<Record<string, TuneChoice>>;
}

/** tune.json: one entry per GPU, each for the model it was tuned on (modelHash). */
export interface TuneFile {
  readonly format: 'nincc-tune';
  readonly version: 1;
  readonly gpus: Readonly<Record<string, TunedChoices & { readonly modelHash: string }>>;
}

export const TUNE_FILE = 'tune.json';

export class TuneRecordError extends Error {}

export const layerPassKey = (layer: number, pass: TunePass) => `${layer}:${pass}`;

/** The (layer, pass) of a conv kernel step; undefined for every other kernel (the record has nothing to say there). */
export function kernelLayerPass(k: KernelStep): { layer: number; pass: TunePass } | undefined {
  switch (k.op) {
    case 'conv_fwd_fused':
    case 'conv_infer':
      return { layer: k.layer, pass: 'forward' };
    case 'conv_dgrad_fused':
      return { layer: k.layer, pass: 'dgrad' };
    case 'conv_wgrad_fused':
      return { layer: k.layer, pass: 'wgrad' };
    case 'conv_weight_bf16':
      return { layer: k.layer, pass: k.consts.dgrad ? 'dgrad' : 'forward' };
    default:
      return undefined;
  }
}

/** The switches one kernel is built with: the build's, with its (layer, pass)'s choices over them. */
export function kernelAblations(global: Ablations | undefined, tuned: TunedChoices | undefined, k: KernelStep): Ablations | undefined {
  const at = tuned && kernelLayerPass(k);
  const choice = at ? tuned.layers[layerPassKey(at.layer, at.pass)] : undefined;
  if (!choice) return global;
  const merged: Record<string, boolean> = { ...global };
  for (const knob of TUNE_KNOB_NAMES) {
    if (choice[knob] === false) merged[knob] = false;
    else if (choice[knob] === true) delete merged[knob];
  }
  return merged as Ablations;
}

/** The choices' share of the build hash: empty without any, so an untuned build's hash is what it was. */
export const tunedDigest = (tuned: TunedChoices | undefined): string => (tuned ? `tuned ${JSON.stringify(tuned)}` : '');

/** Where the spec was written: left out of modelHash, so a moved file or an edited comment keeps its record. */
const PLACE_FIELDS = new Set(['file', 'span', 'callSites', 'network']);

/** What a record is for: the model's layers and shapes, its grid size and arithmetic (not where it was written, nor the target). */
export function modelHash(model: ShapedModel, maxBatch: number, precision: string): string {
  const text = JSON.stringify({ model, maxBatch, precision }, (key, value: unknown) => (PLACE_FIELDS.has(key) ? undefined : value));
  return createHash('sha256').update(text).digest('hex');
}

/** The model's conv layers by Torch index: the layers a record may name. */
export const convLayers = (model: ShapedModel): ReadonlySet<number> => new Set(model.layers.filter((l) => l.kind === 'conv').map((l) => l.index));

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The layers field of one GPU's entry, checked: "LAYER:PASS" keys, known knobs that apply to the pass, boolean values. */
function verifyLayers(v: unknown, file: string, field: string): Record<string, TuneChoice> {
  if (!isObject(v)) throw new TuneRecordError(`${file}: ${field}: expected an object of "LAYER:PASS" → { knob: true|false }`);
  const out: Record<string, TuneChoice> = {};
  for (const [key, choice] of Object.entries(v)) {
    const at = `${field}["${key}"]`;
    const m = /^([1-9][0-9]*):([a-z]+)$/.exec(key);
    if (!m || !(TUNE_PASSES as readonly string[]).includes(m[2])) throw new TuneRecordError(`${file}: ${at}: expected a key LAYER:PASS, PASS one of ${TUNE_PASSES.join(', ')}`);
    const pass = m[2] as TunePass;
    if (!isObject(choice)) throw new TuneRecordError(`${file}: ${at}: expected an object { knob: true|false }`);
    for (const [knob, value] of Object.entries(choice)) {
      const passes = (TUNE_KNOBS as Record<string, readonly TunePass[]>)[knob];
      if (!passes) throw new TuneRecordError(`${file}: ${at}.${knob}: unknown knob (known: ${TUNE_KNOB_NAMES.join(', ')})`);
      if (!passes.includes(pass)) throw new TuneRecordError(`${file}: ${at}.${knob}: the knob applies to the ${passes.join(', ')} pass${passes.length > 1 ? 'es' : ''}, not ${pass}`);
      if (typeof value !== 'boolean') throw new TuneRecordError(`${file}: ${at}.${knob}: expected true or false, got ${JSON.stringify(value)}`);
    }
    out[key] = choice as TuneChoice;
  }
  return out;
}

/** tune.json's text, checked field by field; errors name the file and the field. */
export function parseTuneFile(text: string, file: string): TuneFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TuneRecordError(`${file}: not JSON (${(e as Error).message})`);
  }
  if (!isObject(json) || json.format !== 'nincc-tune') throw new TuneRecordError(`${file}: format: expected "nincc-tune"`);
  if (json.version !== 1) throw new TuneRecordError(`${file}: version: expected 1, got ${JSON.stringify(json.version)}`);
  if (!isObject(json.gpus)) throw new TuneRecordError(`${file}: gpus: expected an object GPU → record`);
  const gpus: Record<string, TuneFile['gpus'][string]> = {};
  for (const [gpu, entry] of Object.entries(json.gpus)) {
    const field = `gpus.${gpu}`;
    if (!isObject(entry)) throw new TuneRecordError(`${file}: ${field}: expected an object`);
    if (entry.how !== 'measured' && entry.how !== 'predicted') throw new TuneRecordError(`${file}: ${field}.how: expected "measured" or "predicted", got ${JSON.stringify(entry.how)}`);
    if (typeof entry.modelHash !== 'string' || !/^[0-9a-f]{64}$/.test(entry.modelHash)) throw new TuneRecordError(`${file}: ${field}.modelHash: expected a SHA-256 in hex`);
    gpus[gpu] = { gpu, how: entry.how, modelHash: entry.modelHash, layers: verifyLayers(entry.layers, file, `${field}.layers`) };
  }
  return { format: 'nincc-tune', version: 1, gpus };
}

/** Where a build reads its choices: a tune.json (or the artifact directory holding one), and the GPU entry (absent: the file's only one). */
export interface TuneSource {
  readonly file: string;
  readonly gpu?: string;
}

/**
 * The choices a build of `model` for `gpu` applies from a tune file: the GPU's entry, checked against the model
 * (the same hash, and every layer a conv of it). `conv` lists the model's conv layers by Torch index.
 */
export function choicesFor(tune: TuneFile, file: string, gpu: string | undefined, hash: string, convLayers: ReadonlySet<number>): TunedChoices {
  const gpus = Object.keys(tune.gpus);
  if (gpu === undefined && gpus.length !== 1) throw new TuneRecordError(`${file}: gpus: ${gpus.length === 0 ? 'no entry' : `entries for ${gpus.join(', ')}`}: name the GPU to build for`);
  const name = gpu ?? gpus[0];
  const entry = tune.gpus[name];
  if (!entry) throw new TuneRecordError(`${file}: gpus: no entry for ${name} (it has ${gpus.join(', ') || 'none'}): run nincc tune for it`);
  if (entry.modelHash !== hash) throw new TuneRecordError(`${file}: gpus.${name}.modelHash: tuned for another model, batch or precision (${entry.modelHash.slice(0, 12)}, this build ${hash.slice(0, 12)}): run nincc tune again`);
  for (const key of Object.keys(entry.layers)) {
    const layer = Number(key.split(':')[0]);
    if (!convLayers.has(layer)) throw new TuneRecordError(`${file}: gpus.${name}.layers["${key}"]: layer ${layer} is not a conv of this model (its convs: ${[...convLayers].join(', ')})`);
  }
  return { gpu: name, how: entry.how, layers: entry.layers };
}

/** The record's description of each knob is the switch's own (ablations.ts): what turning it off does. */
export const knobHelp = (knob: TuneKnob) => `${knob} (${TUNE_KNOBS[knob].join('/')}): off means ${ABLATIONS[knob]}`;
