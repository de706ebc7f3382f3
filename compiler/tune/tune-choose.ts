// `nincc tune`'s choice, as a pure function of timings: each (layer, pass) keeps a knob's default unless the
// variant with the knob flipped is faster on that layer's kernels. Each variant flips one knob for every layer at
// once (one build per knob): the knobs change only their own layer's kernels, so one layer's time does not
// depend on another's choice (tune-record.ts TUNE_KNOBS lists which passes each knob reaches).
import { TUNE_KNOB_NAMES, type TuneChoice, type TuneKnob } from './tune-record.js';

/** One timed build: µs per kernel (predicted, or timed on a GPU). */
export type KernelTimes = ReadonlyMap<string, number>;

/** What the chooser reads: which (layer, pass) each conv kernel is, the default build's times, and each knob's variant's. */
export interface TuneTimings {
  /** kernel name → "LAYER:PASS" (tune-record.ts layerPassKey), for the kernels the record can configure */
  readonly keys: ReadonlyMap<string, string>;
  readonly baseline: KernelTimes;
  /** knob → the times of the build with that knob flipped everywhere (off: every knob defaults to on) */
  readonly variants: ReadonlyMap<TuneKnob, KernelTimes>;
  /** a variant must be faster by more than this fraction to win (0 for predictions; some noise for measurements) */
  readonly margin: number;
}

/** One (layer, pass) of the table: its kernels, the default's µs, each knob variant's µs where it changed anything, and the choice. */
export interface TuneRow {
  readonly key: string;
  readonly kernels: readonly string[];
  readonly baseline: number;
  readonly variants: Readonly<Partial<Record<TuneKnob, number>>>;
  readonly choice: TuneChoice;
}

const total = (times: KernelTimes, kernels: readonly string[]) => kernels.reduce((s, k) => s + (times.get(k) ?? 0), 0);

/**
 * The rows, in the order the kernels were listed. A knob whose variant left every kernel of the row at the same µs
 * is not the row's (it changed nothing there) and stays out of its choice; a row no knob reaches is left out.
 */
export function chooseConfigurations(t: TuneTimings): TuneRow[] {
  const byKey = new Map<string, string[]>();
  for (const [kernel, key] of t.keys) if (t.baseline.has(kernel)) byKey.set(key, [...(byKey.get(key) ?? []), kernel]);
  const rows: TuneRow[] = [];
  for (const [key, kernels] of byKey) {
    const baseline = total(t.baseline, kernels);
    const variants: Partial<Record<TuneKnob, number>> = {};
    const choice: Record<string, boolean> = {};
    for (const knob of TUNE_KNOB_NAMES) {
      const times = t.variants.get(knob);
      if (!times || kernels.every((k) => times.get(k) === t.baseline.get(k))) continue;
      const flipped = total(times, kernels);
      variants[knob] = flipped;
      choice[knob] = !(flipped < baseline * (1 - t.margin));
    }
    if (Object.keys(choice).length > 0) rows.push({ key, kernels, baseline, variants, choice });
  }
  return rows;
}
