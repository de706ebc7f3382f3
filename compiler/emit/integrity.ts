// plan.json's integrity hashes (docs/artifact.md, "Integrity"): the SHA-256 of each kernel library and of the
// plan's own text, written by `nincc build` and checked by the runtime before it opens a library or runs a step.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ZEROS = '0'.repeat(64);
const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface Integrity {
  /** SHA-256 of plan.json with this value's digits replaced by '0's. */
  readonly plan: string;
  /** Device → SHA-256 of that device's library file. */
  readonly libraries: Record<string, string>;
}

/**
 * plan.json's text for `plan`, sealed: `integrity` records the hash of every library it names (files in `dir`)
 * and of the text itself. The runtime finds the plan hash by its (unique) quoted digits, so the layout is free.
 */
export function sealPlan<P extends { readonly libraries: Record<string, string> }>(plan: P, dir: string): string {
  const libraries = Object.fromEntries(Object.entries(plan.libraries).map(([device, file]) => [device, sha256(readFileSync(join(dir, file)))]));
  const draft = JSON.stringify({ ...plan, integrity: { plan: ZEROS, libraries } }, null, 1) + '\n';
  const at = draft.lastIndexOf(`"${ZEROS}"`) + 1;
  return draft.slice(0, at) + sha256(draft) + draft.slice(at + 64);
}

/** Why the artifact in `dir` fails its integrity hashes (the same checks as the runtime's), or undefined if it passes. */
export function integrityProblem(dir: string): string | undefined {
  const file = join(dir, 'plan.json');
  const text = readFileSync(file, 'utf8');
  const plan = JSON.parse(text) as { libraries?: Record<string, string>; integrity?: Integrity };
  const recorded = plan.integrity?.plan;
  if (!recorded || !/^[0-9a-f]{64}$/.test(recorded)) return `${file}: no integrity hashes`;
  const at = text.indexOf(`"${recorded}"`) + 1;
  if (sha256(text.slice(0, at) + ZEROS + text.slice(at + 64)) !== recorded) return `${file}: the plan does not match its hash`;
  for (const [device, library] of Object.entries(plan.libraries ?? {})) {
    const path = join(dir, library);
    if (!existsSync(path)) return `${path}: missing`;
    if (sha256(readFileSync(path)) !== plan.integrity?.libraries[device]) return `${path}: does not match the hash in ${file}`;
  }
  return undefined;
}
