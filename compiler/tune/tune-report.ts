// report.txt's per-layer configuration section: for each conv kernel, whether its knobs (tune-record.ts) were
// timed on a GPU, predicted by the profile model, or left at the build's defaults, and what was chosen.
import type { Program } from '../lower/program-ir.js';
import { kernelLayerPass, layerPassKey, type TunedChoices } from './tune-record.js';

const choiceText = (choice: Readonly<Record<string, boolean | undefined>>) =>
  Object.entries(choice).map(([knob, on]) => `${knob} ${on ? 'on' : 'off'}`).join(', ') || 'the defaults';

/**
 * One line per conv kernel of the programs (each once), in program order; one line in all for an untuned build.
 * `origin`: where a cuda build looked for a timed tuning by itself, and what it found (compiler/build.ts).
 */
export function tuneReport(programs: readonly Program[], tuned: TunedChoices | undefined, origin?: string): string[] {
  if (!tuned) return [`Per-layer configurations: default for every kernel (${origin ?? 'no tune.json applied; nincc tune, then nincc build --tuned'})`];
  const how = tuned.how === 'timed' ? `tuned: timed on ${tuned.hardware ?? 'the GPU'}` : 'predicted: chosen by the profile model on emu';
  const heading = `Per-layer configurations (tune.json for ${tuned.gpu}; ${how}; nincc tune):`;
  const seen = new Set<string>();
  const lines = [heading, ...(origin ? [`  ${origin}`] : [])];
  for (const step of programs.flatMap((p) => p.steps)) {
    const at = kernelLayerPass(step);
    if (!at || seen.has(step.kernel)) continue;
    seen.add(step.kernel);
    const choice = tuned?.layers[layerPassKey(at.layer, at.pass)];
    const chosen = choice ? (tuned.how === 'timed' ? 'tuned' : 'predicted') : 'default';
    lines.push(`  ${step.kernel.padEnd(28)} ${chosen}${choice ? `: ${choiceText(choice)}` : ''}`);
  }
  return lines;
}
