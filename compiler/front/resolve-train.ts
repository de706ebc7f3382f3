// Pass: the `train { … }` block checked against the known options and turned into a TrainConfig.
import type { Setting, SpecFile } from '../../grammar/ast.js';
import { error, formatPosition, type Diagnostic, type Span } from '../../grammar/diagnostics.js';
import { closest } from './evaluate.js';
import { PRECISIONS, type Precision, type RegimeRow, type TrainConfig } from '../ir.js';

const trainOptions = ['batch', 'epochs', 'epochSize', 'criterion', 'optimizer', 'regime', 'precision'] as const;
const sgdOptions = ['momentum'] as const;
const regimeKeys = ['epochs', 'lr', 'wd'] as const;

// The defaults of imagenet-multiGPU.torch where the spec is silent.
const defaults = { batch: 128, epochs: 1, momentum: 0.9 };

function unknownOption(s: Setting, known: readonly string[], where: string): Diagnostic {
  const hint = closest(s.name, known);
  return error('E042', `unknown ${where} option '${s.name}'${hint ? ` (did you mean '${hint}'?)` : ` (known: ${known.join(', ')})`}`, s.nameSpan);
}

function single(s: Setting, out: Diagnostic[], check: (v: number) => string | undefined): number | undefined {
  if (s.value?.kind !== 'numbers' || s.value.values.length !== 1 || s.block) {
    out.push(error('E043', `${s.name} takes one number`, s.span));
    return undefined;
  }
  const v = s.value.values[0];
  const reason = check(v);
  if (reason) {
    out.push(error('E043', `${s.name} ${reason}, got ${v}`, s.value.span));
    return undefined;
  }
  return v;
}

const positiveInteger = (v: number) => (Number.isInteger(v) && v >= 1 ? undefined : 'must be a positive integer');
const nonNegative = (v: number) => (v >= 0 ? undefined : 'must not be negative');

function resolveRegime(block: readonly Setting[], blockSpan: Span, out: Diagnostic[]): RegimeRow[] {
  const rows: RegimeRow[] = [];
  let current: { from: number; to: number; lr?: number; wd?: number; span: Span } | undefined;
  let rejectedRow = false; // the row's range was reported: its lr and wd are not reported again
  const finish = () => {
    if (!current) return;
    if (current.lr === undefined) out.push(error('E043', `regime row ${current.from}..${current.to} has no lr`, current.span));
    else rows.push({ from: current.from, to: current.to, lr: current.lr, wd: current.wd ?? 0, span: current.span });
    current = undefined;
  };
  for (const s of block) {
    if (!(regimeKeys as readonly string[]).includes(s.name)) {
      out.push(unknownOption(s, regimeKeys, 'regime'));
      continue;
    }
    if (s.name === 'epochs') {
      finish();
      rejectedRow = true;
      if (s.value?.kind !== 'range') {
        out.push(error('E043', 'a regime row starts with an epoch range like `epochs 1..9`', s.span));
        continue;
      }
      if (s.value.from > s.value.to) {
        out.push(error('E041', `inverted regime range ${s.value.from}..${s.value.to} (the first epoch must not be after the last)`, s.value.span));
        continue;
      }
      if (s.value.from < 1) {
        out.push(error('E043', 'regime epochs start at 1', s.value.span));
        continue;
      }
      current = { from: s.value.from, to: s.value.to, span: s.span };
      rejectedRow = false;
      continue;
    }
    if (!current && rejectedRow) continue;
    if (!current) {
      out.push(error('E043', `'${s.name}' must follow an epoch range like \`epochs 1..9\``, s.nameSpan));
      continue;
    }
    const v = single(s, out, nonNegative);
    if (v === undefined) continue;
    current = { ...current, [s.name]: v, span: { ...current.span, end: s.span.end } };
  }
  finish();
  if (rows.length === 0 && out.length === 0) out.push(error('E043', 'regime has no rows', blockSpan));
  const sorted = [...rows].sort((a, b) => a.from - b.from);
  for (let i = 1; i < sorted.length; i++) {
    const [a, b] = [sorted[i - 1], sorted[i]];
    if (b.from <= a.to) {
      out.push(error('E040', `regime ranges ${a.from}..${a.to} and ${b.from}..${b.to} overlap`, b.span, [{ message: `the other range is at ${formatPosition(a.span)}` }]));
    }
  }
  return sorted;
}

export function resolveTrain(spec: SpecFile): { train?: TrainConfig; diagnostics: Diagnostic[] } {
  const diagnostics: Diagnostic[] = [];
  if (spec.trains.length === 0) return { diagnostics };
  for (const extra of spec.trains.slice(1)) diagnostics.push(error('E036', 'duplicate train block', extra.span));
  const block = spec.trains[0];
  let batch = defaults.batch;
  let epochs = defaults.epochs;
  let epochSize: number | undefined;
  let momentum = defaults.momentum;
  let regime: RegimeRow[] = [];
  let precision: Precision | undefined;
  for (const s of block.settings) {
    switch (s.name) {
      case 'batch':
        batch = single(s, diagnostics, positiveInteger) ?? batch;
        break;
      case 'epochs':
        epochs = single(s, diagnostics, positiveInteger) ?? epochs;
        break;
      case 'epochSize':
        epochSize = single(s, diagnostics, positiveInteger);
        break;
      case 'criterion':
        if (s.value?.kind !== 'word' || s.value.word !== 'nll') diagnostics.push(error('E043', 'criterion must be nll (ClassNLLCriterion after logsoftmax)', s.span));
        break;
      case 'optimizer':
        if (s.value?.kind !== 'word' || s.value.word !== 'sgd') {
          diagnostics.push(error('E043', 'optimizer must be sgd', s.span));
          break;
        }
        for (const o of s.block ?? []) {
          if (o.name === 'momentum') momentum = single(o, diagnostics, (v) => (v >= 0 && v < 1 ? undefined : 'must be in [0, 1)')) ?? momentum;
          else diagnostics.push(unknownOption(o, sgdOptions, 'sgd'));
        }
        break;
      case 'regime':
        if (s.value || !s.block) diagnostics.push(error('E043', 'regime takes a block: regime { epochs 1..9 lr 0.1 wd 5e-4 … }', s.span));
        else regime = resolveRegime(s.block, s.span, diagnostics);
        break;
      case 'precision': {
        const word = s.value?.kind === 'word' && !s.block ? s.value.word : undefined;
        const known = PRECISIONS.find((p) => p === word);
        if (known) precision = known;
        else {
          const hint = word ? closest(word, PRECISIONS) : undefined;
          diagnostics.push(error('E043', `precision must be one of ${PRECISIONS.join(', ')}${word ? `, got '${word}'` : ''}${hint ? ` (did you mean '${hint}'?)` : ''}`, s.value?.span ?? s.span));
        }
        break;
      }
      default:
        diagnostics.push(unknownOption(s, trainOptions, 'train'));
    }
  }
  const train: TrainConfig = { batch, epochs, ...(epochSize !== undefined ? { epochSize } : {}), criterion: 'nll', optimizer: { kind: 'sgd', momentum }, regime, ...(precision ? { precision } : {}) };
  return { train, diagnostics };
}

/** The regime row in force at an epoch (1-based); past the table, and in gaps, the last row that started keeps going. */
export function regimeAt(regime: readonly RegimeRow[], epoch: number): RegimeRow | undefined {
  let row: RegimeRow | undefined;
  for (const r of regime) if (r.from <= epoch) row = r;
  return row ?? regime[0];
}
