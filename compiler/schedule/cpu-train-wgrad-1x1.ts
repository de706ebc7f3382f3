// Which CPU training weight gradient of a 1x1 conv runs (runtime/include/nincc/cpu/conv_wgrad_1x1.h
// wgrad_1x1_applies, static_asserted equal in the generated code), and the report.txt lines that say why.
import type { ConvShape } from '../lower/ops.js';
import type { Program } from '../lower/program-ir.js';

/** Pixels per tile of conv_wgrad_1x1.h's rule (kWholeTilePixels): a plane of whole tiles has no tile crossing images. */
export const wholeTilePixels = 32;
/** conv_wgrad.h kGroupedMaxFloats: a dw up to this many floats is summed in pixel groups. */
export const groupedMaxDwFloats = 160 * 1024;

const isPointwise = (c: ConvShape): boolean => c.R === 1 && c.S === 1 && c.sh === 1 && c.sw === 1 && c.ph === 0 && c.pw === 0;

/** Whether a 1x1 conv's weight gradient reads dy unpacked (conv_wgrad_1x1.h) instead of the GEMM's panels (conv_wgrad.h). */
export function wgrad1x1Applies(c: ConvShape): boolean {
  return isPointwise(c) && (c.P * c.Q) % wholeTilePixels === 0 && c.K * c.C <= groupedMaxDwFloats;
}

/** How the 1x1 form prefetches the next pixel block (the cpuWgradSpreadPrefetch ablation, compiler/ablations.ts). */
function prefetchReason(burst: boolean | undefined): string {
  return burst
    ? 'the next pixel block prefetched in one burst per tile product (cpuWgradSpreadPrefetch off)'
    : 'the next pixel block prefetched a few lines every 4 pixels of each tile product, not in one burst before it; measured 0.93-0.96 of the burst\'s time (bench/logs/i19A-wgrad-1x1-spread-prefetch.out)';
}

function reason(c: ConvShape & { readonly burstPrefetch?: boolean }): string {
  if (wgrad1x1Applies(c)) return `dy unpacked, x's planes transposed in place (conv_wgrad_1x1.h): ${c.P}x${c.Q} is ${(c.P * c.Q) / wholeTilePixels} whole tiles of ${wholeTilePixels} pixels; measured 0.88-0.90 of the GEMM's time on NIN's 96-channel 56x56 (bench/logs/i19o-wgrad-1x1.out); ${prefetchReason(c.burstPrefetch)}`;
  if ((c.P * c.Q) % wholeTilePixels !== 0) return `implicit GEMM (conv_wgrad.h): ${c.P}x${c.Q} pixels are not whole tiles of ${wholeTilePixels} (the unpacked form took 1.03-1.43x the GEMM's time on NIN's 28x28, 14x14 and 7x7 1x1s)`;
  return `implicit GEMM (conv_wgrad.h): dw of ${c.K * c.C} floats is past ${groupedMaxDwFloats}, not summed in pixel groups`;
}

/** report.txt lines: the weight gradient of every 1x1 conv of a cpu build's training programs, and why. */
export function wgrad1x1Report(programs: readonly Program[]): string[] {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const step of programs.flatMap((p) => p.steps)) {
    if (step.op !== 'conv_bwd_weight' || seen.has(step.kernel) || !isPointwise(step.consts)) continue;
    seen.add(step.kernel);
    const c = step.consts;
    lines.push(`  ${step.kernel.padEnd(28)} 1x1 ${c.C}→${c.K} on ${c.H}x${c.W}: ${reason(c)}`);
  }
  return lines.length > 0 ? ['CPU training weight gradients of 1x1 convs:', ...lines] : [];
}
