// Which CPU training weight gradient of a strided stem conv runs (runtime/include/nincc/cpu/conv_wgrad_stem.h
// wgrad_stem_applies, static_asserted equal in the generated code), and the report.txt lines that say why.
import type { ConvShape } from '../lower/ops.js';
import type { Program } from '../lower/program-ir.js';
import { groupedMaxDwFloats } from './cpu-train-wgrad-1x1.js';

/** conv_wgrad_stem.h kWgradStemMaxChannels: at most this many input channels (X's rows then outnumber dy's). */
export const stemMaxInputChannels = 4;

const isStrided = (c: ConvShape): boolean => c.sh > 1 || c.sw > 1;

/** The header's rule: a strided conv of few input channels whose dw (K x C·R·S) is summed in pixel groups. */
export function wgradStemApplies(c: ConvShape): boolean {
  return isStrided(c) && c.C <= stemMaxInputChannels && c.K * c.C * c.R * c.S <= groupedMaxDwFloats;
}

type WeightGradientConsts = ConvShape & { yTotal?: number; u8Mean?: readonly number[] };

function reason(c: WeightGradientConsts): string {
  if (!wgradStemApplies(c)) {
    if (c.C > stemMaxInputChannels) return `implicit GEMM (conv_wgrad.h): ${c.C} input channels, past ${stemMaxInputChannels}`;
    return `implicit GEMM (conv_wgrad.h): dw of ${c.K * c.C * c.R * c.S} floats is past ${groupedMaxDwFloats}, not summed in pixel groups`;
  }
  if (c.u8Mean) return 'implicit GEMM (conv_wgrad.h): reads the uint8 images in place (u8_input.h)';
  if (c.yTotal !== undefined) return "implicit GEMM (conv_wgrad.h): dy is read from a concat's gradient";
  return `X unpacked from a padded phase-split copy, dy transposed (conv_wgrad_stem.h): ${c.C * c.R * c.S} taps against ${c.K} channels; measured 0.83-0.88 of the GEMM's thread-CPU time on NIN's 11x11/4 stem (bench/logs/i19q-wgrad-stem.out)`;
}

/** report.txt lines: the weight gradient of every strided conv of a cpu build's training programs, and why. */
export function wgradStemReport(programs: readonly Program[]): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const step of programs.flatMap((p) => p.steps)) {
    if (step.op !== 'conv_bwd_weight' || seen.has(step.kernel) || !isStrided(step.consts)) continue;
    seen.add(step.kernel);
    const c = step.consts as WeightGradientConsts;
    lines.push(`  ${step.kernel.padEnd(28)} ${c.R}x${c.S}/${c.sh}x${c.sw} ${c.C}→${c.K} on ${c.H}x${c.W}: ${reason(c)}`);
  }
  return lines.length > 0 ? ['CPU training weight gradients of strided convs:', ...lines] : [];
}
