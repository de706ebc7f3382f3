// report.txt's per-layer configuration section: for each conv kernel, whether its knobs (tune-record.ts) were
// timed on a GPU, predicted by the profile model, or left at the build's defaults, and what was chosen.
import type { Program } from '../lower/program-ir.js';
import { kernelLayerPass, layerPassKey, type TunedChoices } from './tune-record.js';

const choiceText = (choice: Readonly<Record<string, boolean | undefined>>) =>
  Object.entries(choice).map(([knob, on]) => `${knob} ${on ? 'on' : 'off'}`).join(', ') || 'the defaults';

/** One line per conv kernel of the programs (each once), in program order; one line in all for an untuned build. */
export function tuneReport(programs: readonly Program[], tuned: TunedChoices | undefined): string[] {
  if (!tuned) return ['Per-layer configurations: default for every kernel (no tune.json applied; nincc tune, then nincc build --tuned)'];
  const heading = `Per-layer configurations (tune.json for ${tuned.gpu}; ${tuned.how === 'measured' ? 'tuned: timed on the GPU' : 'predicted: chosen by the profile model on emu'}; nincc tune):`;
  const seen = new Set<string>();
  const lines = [heading];
  for (const step of programs.flatMap((p) => p.steps)) {
    const at = kernelLayerPass(step);
    if (!at || seen.has(step.kernel)) continue;
    seen.add(step.kernel);
    const choice = tuned?.layers[layerPassKey(at.layer, at.pass)];
    const how = choice ? (tuned.how === 'measured' ? 'tuned' : 'predicted') : 'default';
    lines.push(`  ${step.kernel.padEnd(28)} ${how}${choice ? `: ${choiceText(choice)}` : ''}`);
  }
  return lines;
}
