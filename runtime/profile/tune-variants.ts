// `nincc tune`: per layer and pass, the knob variants of a bf16 artifact (tune-record.ts) built side by side,
// checked against the default build on emu on a small batch, timed by a VariantTimer (the profile model's
// prediction, tune-predict.ts, or the GPU's events, tune-timed.ts), and the winners (tune-choose.ts) written
// into the artifact's tune.json under the timer's key.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildArtifact } from '../../compiler/build.js';
import type { Plan } from '../../compiler/emit/plan.js';
import type { ShapedModel } from '../../compiler/ir.js';
import { compileModel, type Compiled } from '../../compiler/pipeline.js';
import { chooseConfigurations, type KernelTimes, type TuneRow } from '../../compiler/tune/tune-choose.js';
import { kernelLayerPass, layerPassKey, modelHash, parseTuneFile, TUNE_FILE, TUNE_KNOB_NAMES, TUNE_KNOBS, TuneRecordError, type TunedChoices, type TuneFile, type TuneHow, type TuneKnob } from '../../compiler/tune/tune-record.js';
import { load, type Model } from '../model.js';

/** How the variants are built and timed, and what the winners are filed under. */
export interface VariantTimer {
  /** the GPU entry's key in tune.json */
  readonly key: string;
  readonly how: TuneHow;
  /** timed: the GPU's name as the driver gives it */
  readonly hardware?: string;
  /** emu to predict; cuda to time on the GPU (its artifacts hold the emu library too, for the check) */
  readonly target: 'emu' | 'cuda';
  /** a variant must be faster by more than this fraction to win (tune-choose.ts) */
  readonly margin: number;
  /** µs per kernel of one artifact at `batch`, inference and training summed */
  time(dir: string, batch: number): Promise<KernelTimes>;
}

export interface TuneVariantsOptions {
  readonly batch: number;
  /** only these conv layers (Torch indices); absent: every conv */
  readonly layers?: ReadonlySet<number>;
  /** images of the output check of each variant against the default; 0 skips it */
  readonly checkBatch: number;
  readonly onProgress: (line: string) => void;
}

/** How a variant's gradients compared with the default build's on the check batch. */
export type VariantCheck = { readonly kind: 'bitwise' } | { readonly kind: 'bounded'; readonly worst: number } | { readonly kind: 'skipped'; readonly why: string };

export interface TuneVariantsResult {
  readonly rows: readonly TuneRow[];
  /** each knob tried: its check, or why it was not built */
  readonly knobs: ReadonlyMap<TuneKnob, VariantCheck | { readonly kind: 'unchanged' }>;
  readonly file: string;
  /** what was written under the timer's key */
  readonly entry: TuneFile['gpus'][string];
}

/**
 * The largest |Δ| of a gradient relative to the largest |g| of its tensor that still passes: a summation order
 * changed by a variant (the stem's space-to-depth k order) moves bf16-rounded operands' sums by a few ulps of
 * bf16 (2^-8) at the scale of the tensor; a wrong kernel moves them by its own size.
 */
export const GRADIENT_BOUND = 2 ** -5;

function readArtifact(dir: string, target: VariantTimer['target']): { plan: Plan; model: ShapedModel; sourceHash: string } {
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan;
  if ((plan.precision ?? 'fp32') !== 'bf16') throw new TuneRecordError(`${dir}: built with precision ${plan.precision ?? 'fp32'}: the per-layer knobs are the bf16 tensor-core kernels'; build it with --precision bf16`);
  if (!plan.libraries.emu) throw new TuneRecordError(`${dir}: no emu kernels (built for --target ${plan.libraries.cuda ? 'cuda' : 'cpu'} without them): build it with --target emu`);
  if (target === 'cuda' && !plan.libraries.cuda) throw new TuneRecordError(`${dir}: no cuda kernels (built for --target emu): timing on the GPU needs a --target cuda build`);
  const modelJson = join(dir, 'model.json');
  if (!existsSync(modelJson)) throw new TuneRecordError(`${modelJson}: no such file: rebuild the artifact`);
  const m = JSON.parse(readFileSync(modelJson, 'utf8')) as { model: ShapedModel; sourceHash: string };
  return { plan, model: m.model, sourceHash: m.sourceHash };
}

/** The artifact's model compiled in-process (no g++), the build's way, with `tuned` over its defaults. */
const compileFor = (model: ShapedModel, plan: Plan, tuned: TunedChoices | undefined): Compiled =>
  compileModel(model, { target: 'emu', maxBatch: plan.maxBatch, sourceHash: '', libraries: {}, cpuFeatures: [], precision: 'bf16', ...(plan.imageInput ? { input: 'u8' as const } : {}), ...(tuned ? { tuned } : {}) });

/** Every generated cuda kernel's text and launch, by name: what tells whether a variant changed a kernel. */
const kernelTexts = (c: Compiled): Map<string, string> => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify([k.body, k.launch, k.params])]));

/** The conv kernels' (layer, pass) keys, by kernel name. */
function kernelKeys(c: Compiled): Map<string, string> {
  const keys = new Map<string, string>();
  for (const step of c.lowered.programs.flatMap((p) => p.steps)) {
    const at = kernelLayerPass(step);
    if (at) keys.set(step.kernel, layerPassKey(at.layer, at.pass));
  }
  return keys;
}

/** A small deterministic batch in [-1, 1) (a linear congruential stream: no dependence on Math.random). */
function checkImages(count: number): Float32Array {
  let s = 12345;
  return Float32Array.from({ length: count }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** One forward and backward of both builds from the same tensors: equal gradients, or within GRADIENT_BOUND; throws beyond it. */
async function checkVariant(baseDir: string, variantDir: string, plan: Plan, n: number): Promise<VariantCheck> {
  if (plan.imageInput) return { kind: 'skipped', why: 'the artifact takes uint8 images' };
  if (plan.untrainable) return { kind: 'skipped', why: 'the model does not train' };
  const models: Model[] = [];
  try {
    for (const d of [baseDir, variantDir]) models.push(await load(d, { device: 'emu', seed: 7 }));
    const [a, b] = models;
    for (const t of a.tensorNames()) b.setTensor(t, a.getTensor(t));
    const batch = Math.min(n, plan.maxBatch);
    const images = checkImages(batch * plan.input.reduce((x, y) => x * y, 1));
    const labels = Int32Array.from({ length: batch }, (_, i) => i % plan.classes);
    for (const m of models) await m.forwardBackward(images, labels);
    let worst = 0;
    for (const t of a.info.params.map((p) => p.name)) {
      const ga = a.getGradient(t), gb = b.getGradient(t);
      const scale = ga.reduce((s, v) => Math.max(s, Math.abs(v)), 0) || 1;
      for (let i = 0; i < ga.length; i++) {
        const d = Math.abs(ga[i] - gb[i]) / scale;
        if (!(d <= GRADIENT_BOUND)) throw new TuneRecordError(`the variant ${variantDir} disagrees with the default build: ${t}[${i}] ${gb[i]} against ${ga[i]} (beyond ${GRADIENT_BOUND} of the tensor's largest)`);
        worst = Math.max(worst, d);
      }
    }
    return worst === 0 ? { kind: 'bitwise' } : { kind: 'bounded', worst };
  } finally {
    await Promise.all(models.map((m) => m.dispose()));
  }
}

/** The tune.json with `entry` for its GPU, others kept (an unreadable old file is an error, not overwritten). */
function mergeTuneFile(path: string, gpuName: string, entry: TuneFile['gpus'][string]): TuneFile {
  const old = existsSync(path) ? parseTuneFile(readFileSync(path, 'utf8'), path) : undefined;
  return { format: 'nincc-tune', version: 1, gpus: { ...(old?.gpus ?? {}), [gpuName]: entry } };
}

export async function tuneVariants(dir: string, o: TuneVariantsOptions, timer: VariantTimer): Promise<TuneVariantsResult> {
  const { plan, model, sourceHash } = readArtifact(dir, timer.target);
  if (o.batch > plan.maxBatch) throw new TuneRecordError(`--batch ${o.batch}: ${dir} runs at most ${plan.maxBatch} (its max batch)`);
  const compiled = compileFor(model, plan, undefined);
  const keys = kernelKeys(compiled);
  const layersOf = new Set([...keys.values()].map((k) => Number(k.split(':')[0])));
  for (const l of o.layers ?? []) if (!layersOf.has(l)) throw new TuneRecordError(`--layers: layer ${l} is not a tensor-core conv of ${plan.model} (its convs: ${[...layersOf].join(', ')})`);
  const tunedKeys = [...new Set(keys.values())].filter((k) => !o.layers || o.layers.has(Number(k.split(':')[0])));
  const defaults = kernelTexts(compiled);
  const work = mkdtempSync(join(tmpdir(), 'nincc-tune-'));
  const knobs = new Map<TuneKnob, VariantCheck | { kind: 'unchanged' }>();
  const variants = new Map<TuneKnob, KernelTimes>();
  try {
    o.onProgress(`default: timing ${dir} (batch ${o.batch})`);
    const baseline = await timer.time(dir, o.batch);
    for (const knob of TUNE_KNOB_NAMES) {
      const passes: readonly string[] = TUNE_KNOBS[knob];
      const flipped = tunedKeys.filter((k) => passes.includes(k.split(':')[1]));
      const tuned: TunedChoices = { gpu: timer.key, how: timer.how, layers: Object.fromEntries(flipped.map((k) => [k, { [knob]: false }])) };
      const texts = kernelTexts(compileFor(model, plan, tuned));
      const changed = [...texts].filter(([name, text]) => defaults.get(name) !== text).map(([name]) => name);
      if (changed.length === 0) {
        o.onProgress(`${knob} off: changes no kernel of the layers tuned, not built`);
        knobs.set(knob, { kind: 'unchanged' });
        continue;
      }
      const out = join(work, knob);
      o.onProgress(`${knob} off: building (${changed.length} kernel${changed.length === 1 ? '' : 's'} change: ${changed.join(', ')})`);
      buildArtifact(model, `nincc tune variant of ${sourceHash}`, { outDir: out, target: timer.target, withoutCpuLibrary: true, maxBatch: plan.maxBatch, precision: 'bf16', ...(plan.imageInput ? { input: 'u8' as const } : {}), tuned });
      const check: VariantCheck = o.checkBatch > 0 ? await checkVariant(dir, out, plan, o.checkBatch) : { kind: 'skipped', why: '--check-batch 0' };
      knobs.set(knob, check);
      o.onProgress(`${knob} off: outputs ${check.kind === 'bitwise' ? 'bitwise the default\'s' : check.kind === 'bounded' ? `within the bound (worst ${check.worst.toExponential(2)} of a tensor's largest gradient)` : `not checked (${check.why})`}; timing`);
      variants.set(knob, await timer.time(out, o.batch));
    }
    const tunedSet = new Set(tunedKeys);
    const rows = chooseConfigurations({ keys: new Map([...keys].filter(([, k]) => tunedSet.has(k))), baseline, variants, margin: timer.margin });
    const file = join(dir, TUNE_FILE);
    const hardware = timer.hardware !== undefined ? { hardware: timer.hardware } : {};
    const entry = { gpu: timer.key, how: timer.how, ...hardware, modelHash: modelHash(model, plan.maxBatch, 'bf16'), layers: Object.fromEntries(rows.map((r) => [r.key, r.choice])) };
    writeFileSync(file, `${JSON.stringify(mergeTuneFile(file, timer.key, entry), null, 2)}\n`);
    return { rows, knobs, file, entry };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
