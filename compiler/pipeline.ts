// The compiler as two flat lists of named passes. Front end: parse → select model → header → train block →
// expand defs → shapes → verify. Back end (lowerModel): params → training → inference → memory → plan.
import { hasErrors, type Diagnostic } from '../grammar/diagnostics.js';
import { parseSpec } from '../grammar/parse.js';
import { expandDefs } from './expand-defs.js';
import { inferShapes } from './infer-shapes.js';
import type { ShapedModel } from './ir.js';
import { resolveHeader, selectModel } from './resolve-header.js';
import { resolveTrain } from './resolve-train.js';
import { IRVerificationError, verifyShapedModel } from './verify-ir.js';
import { emitPlan, type Plan } from './emit-plan.js';
import { lowerInference } from './lower-infer.js';
import { lowerParams } from './lower-params.js';
import { lowerSgdUpdate, lowerTrainForwardBackward } from './lower-train.js';
import { lowerTrainFused } from './lower-train-fused.js';
import type { Program } from './plan-ir.js';
import { planMemory, verifyMemoryPlan } from './plan-memory.js';

export interface FrontEndResult {
  readonly model?: ShapedModel;
  readonly diagnostics: readonly Diagnostic[];
}

export interface FrontEndOptions {
  /** Called with each pass's name and output, for `--dump` and tests. */
  readonly dump?: (pass: string, ir: unknown) => void;
}

export function compileSpec(source: string, file: string, options: FrontEndOptions = {}): FrontEndResult {
  const dump = options.dump ?? (() => {});
  const diagnostics: Diagnostic[] = [];

  const parsed = parseSpec(source, file);
  dump('parse', parsed.ast);
  diagnostics.push(...parsed.diagnostics);
  // A syntax error stops the run here unless the parser repaired it where it stood (`inptu 1x28x28` read as
  // `input`, `modle m {` as `model`) or skipped it whole (a `//` line): then the tree is what the author meant and its semantic errors
  // are real. Any other syntax error leaves a recovered, partial tree, on which they would mostly be echoes.
  if (!parsed.intact) return { diagnostics };

  const selected = selectModel(parsed.ast);
  diagnostics.push(...selected.diagnostics);
  if (!selected.model) return { diagnostics };
  const decl = selected.model;

  const header = resolveHeader(decl);
  dump('resolve-header', header);
  const train = resolveTrain(parsed.ast);
  dump('resolve-train', train.train);
  // The train block's errors and the model's come from different passes: each group in the order of its block.
  const trainFirst = (parsed.ast.trains[0]?.span.start.offset ?? Infinity) < decl.span.start.offset;
  const modelDiagnostics: Diagnostic[] = [...header.diagnostics];
  // The parse's repaired errors (in file order) go among them by position.
  const semantic = () => (trainFirst ? [...train.diagnostics, ...modelDiagnostics] : [...modelDiagnostics, ...train.diagnostics]);
  const done = () => ({ diagnostics: interleave(diagnostics, semantic()) });

  const expanded = expandDefs(decl);
  dump('expand-defs', expanded.layers);
  modelDiagnostics.push(...expanded.diagnostics);
  // A bad train option or layer call does not hide the model's other errors: shapes are inferred past the
  // calls that failed (their place is a gap of unknown shape) unless the header or the expansion ran away.
  const runaway = expanded.diagnostics.some((d) => d.code === 'E015');
  if (hasErrors(header.diagnostics) || runaway || !header.input) return done();

  const shaped = inferShapes(expanded.layers, header.input, expanded.gaps);
  dump('infer-shapes', shaped.layers);
  modelDiagnostics.splice(header.diagnostics.length, Infinity, ...interleave(expanded.diagnostics, shaped.diagnostics));
  // A repaired syntax error is still an error: no model.
  if (hasErrors(diagnostics) || hasErrors(modelDiagnostics) || hasErrors(train.diagnostics) || !shaped.output) return done();
  const all = interleave(diagnostics, semantic());

  const model: ShapedModel = {
    name: decl.name,
    file,
    input: header.input,
    ...(header.imageSize !== undefined ? { imageSize: header.imageSize } : {}),
    ...(header.transform ? { transform: header.transform } : {}),
    ...(train.train ? { train: train.train } : {}),
    layers: shaped.layers,
    output: shaped.output,
    totals: shaped.layers.reduce((t, l) => ({ params: t.params + l.params, macs: t.macs + l.macs }), { params: 0, macs: 0 }),
  };
  const problems = verifyShapedModel(model);
  if (problems.length > 0) throw new IRVerificationError('infer-shapes', problems);
  return { model, diagnostics: all };
}

/** Two passes' diagnostics in one list by source position, each pass's own order kept (a def's errors follow its calls). */
function interleave(a: readonly Diagnostic[], b: readonly Diagnostic[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i].span.start.offset <= b[j].span.start.offset)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

export interface LoweringOptions {
  readonly maxBatch: number;
  readonly sourceHash: string;
  readonly libraries: Record<string, string>;
  /** cpu: one kernel per layer (the cpu library's). cuda: the fused BN+ReLU training program (cuda/emu). */
  readonly trainKernels?: 'cpu' | 'cuda';
}

export interface Lowered {
  readonly plan: Plan;
  readonly programs: readonly Program[];
  readonly inferenceGroups: ReturnType<typeof lowerInference>['groups'];
}

/** The back end as one flat list: params → training programs → inference programs → memory → plan.json. */
export function lowerModel(model: ShapedModel, options: LoweringOptions, dumpIR: FrontEndOptions['dump'] = () => {}): Lowered {
  const layout = lowerParams(model);
  dumpIR('lower-params', layout);
  const untrainable =
    model.layers[model.layers.length - 1]?.kind !== 'logsoftmax'
      ? 'training with the nll criterion needs a model that ends in logsoftmax'
      : layout.paramSize === 0
        ? 'the model has no parameters to train'
        : undefined;
  const train = untrainable ? undefined : options.trainKernels === 'cuda' ? lowerTrainFused(model, options.maxBatch) : lowerTrainForwardBackward(model);
  const sgd = untrainable ? undefined : lowerSgdUpdate(model, layout);
  dumpIR('lower-train', train?.program);
  const infer = lowerInference(model);
  dumpIR('lower-infer', infer);
  const programs = [infer.prepare, infer.infer, ...(train ? [train.program] : []), ...(sgd ? [sgd] : [])];
  const buffers = [...layout.buffers, ...infer.builders.flatMap((b) => b.buffers), ...(train ? train.builder.buffers : [])];
  const memory = planMemory(buffers, programs);
  dumpIR('plan-memory', memory);
  const problems = verifyMemoryPlan(memory, programs);
  if (problems.length > 0) throw new IRVerificationError('plan-memory', problems);
  const plan = emitPlan(model, layout, memory, programs, options);
  dumpIR('emit-plan', plan);
  return { plan: untrainable ? { ...plan, untrainable } : plan, programs, inferenceGroups: infer.groups };
}
