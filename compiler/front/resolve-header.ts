// Pass: the model's header (input, imageSize, transform) checked and turned into plain values.
import type { ModelDecl, Setting, SpecFile } from '../../grammar/ast.js';
import { error, formatPosition, type Diagnostic } from '../../grammar/diagnostics.js';
import { maxSize } from './layers.js';
import type { Transform } from '../ir.js';
import { exceeds, maxElementsPerImage, product } from './size-limits.js';
import { closest } from '../../grammar/near-miss.js';

export interface Header {
  readonly input?: readonly number[];
  readonly imageSize?: number;
  readonly transform?: Transform;
  readonly diagnostics: readonly Diagnostic[];
}

/** Exactly one `model` per file. */
export function selectModel(spec: SpecFile): { model?: ModelDecl; diagnostics: Diagnostic[] } {
  if (spec.models.length === 0) return { diagnostics: [error('E037', "no 'model NAME { … }' in this file", spec.span)] };
  const extra = spec.models.slice(1).map((m) =>
    error('E037', `only one model per file: '${m.name}' follows '${spec.models[0].name}'`, m.nameSpan, [{ message: `first model at ${formatPosition(spec.models[0].nameSpan)}` }]),
  );
  return { model: spec.models[0], diagnostics: extra };
}

function duplicates<T extends { span: Diagnostic['span'] }>(items: readonly T[], what: string, out: Diagnostic[]): T | undefined {
  for (const later of items.slice(1)) out.push(error('E036', `duplicate ${what}`, later.span, [{ message: `first given at ${formatPosition(items[0].span)}` }]));
  return items[0];
}

function resolveTransform(settings: readonly Setting[], channels: number | undefined, out: Diagnostic[]): Transform | undefined {
  const values = new Map<string, number[]>();
  const first = new Map<string, Setting>();
  for (const s of settings) {
    if (s.name !== 'mean' && s.name !== 'std') {
      const meant = closest(s.name, ['mean', 'std']);
      out.push(error('E039', `unknown transform entry '${s.name}' (${meant ? `did you mean '${meant}'?` : 'expected mean and std'})`, s.nameSpan));
      continue;
    }
    const earlier = first.get(s.name);
    if (earlier) {
      out.push(error('E036', `duplicate transform ${s.name}`, s.nameSpan, [{ message: `first given at ${formatPosition(earlier.nameSpan)}`, span: earlier.nameSpan }]));
      continue;
    }
    first.set(s.name, s);
    if (s.value?.kind !== 'numbers' || s.block) {
      out.push(error('E039', `transform ${s.name} takes one number per input channel`, s.span));
      continue;
    }
    const v = [...s.value.values];
    if (channels !== undefined && v.length !== channels) {
      out.push(error('E039', `transform ${s.name} has ${v.length} value${v.length === 1 ? '' : 's'} but the input has ${channels} channel${channels === 1 ? '' : 's'}`, s.value.span));
      continue;
    }
    if (s.name === 'std' && v.some((x) => x <= 0)) {
      out.push(error('E039', 'transform std values must be positive', s.value.span));
      continue;
    }
    values.set(s.name, v);
  }
  const mean = values.get('mean');
  const std = values.get('std');
  if (!mean || !std) {
    if (settings.length > 0 && out.length === 0) out.push(error('E039', 'transform needs both mean and std', settings[0].span));
    return undefined;
  }
  return { mean, std };
}

export function resolveHeader(model: ModelDecl): Header {
  const diagnostics: Diagnostic[] = [];
  const inputDecl = duplicates(model.inputs, 'input', diagnostics);
  const imageSizeDecl = duplicates(model.imageSizes, 'imageSize', diagnostics);
  const transformDecl = duplicates(model.transforms, 'transform', diagnostics);
  let input: readonly number[] | undefined;
  if (!inputDecl) {
    diagnostics.push(error('E034', `model '${model.name}' has no input: add a line like 'input 3x224x224' (channels x height x width)`, model.nameSpan));
  } else if (inputDecl.dims.length !== 3 || inputDecl.dims.some((d) => d < 1)) {
    diagnostics.push(error('E038', `input must be CxHxW with every size at least 1, got ${inputDecl.dims.join('x')}`, inputDecl.span));
  } else if (inputDecl.dims.some((d) => d > maxSize)) {
    diagnostics.push(error('E038', `input sizes must be at most ${maxSize}, got ${inputDecl.dims.join('x')}`, inputDecl.span));
  } else if (exceeds(product(inputDecl.dims), maxElementsPerImage)) {
    diagnostics.push(error('E038', `input ${inputDecl.dims.join('x')} has ${product(inputDecl.dims)} elements, more than the ${maxElementsPerImage} an image may have`, inputDecl.span));
  } else input = inputDecl.dims;
  if (imageSizeDecl && input && imageSizeDecl.value < Math.min(input[1], input[2])) {
    diagnostics.push(error('E038', `imageSize ${imageSizeDecl.value} is smaller than the ${input[1]}x${input[2]} crop`, imageSizeDecl.span));
  }
  const transform = transformDecl ? resolveTransform(transformDecl.settings, input?.[0], diagnostics) : undefined;
  return {
    ...(input ? { input } : {}),
    ...(imageSizeDecl ? { imageSize: imageSizeDecl.value } : {}),
    ...(transform ? { transform } : {}),
    diagnostics,
  };
}
