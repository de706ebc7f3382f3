// `nincc profile SPEC --precision bf16 --json` of a spec text at a batch, on emu without nvcc, in a temporary
// folder (or of a built emu artifact): the kernels' profile counters, for the tests that check a kernel's bank conflicts on the emulator.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProfileReport } from '../../runtime/profile/run-profile.js';
import { nincc } from '../cli-run.js';

/** The profile's kernels of `spec` (saved as `file`) at batch `batch`; throws with the CLI's stderr when it fails. */
export function profileKernels(spec: string, file: string, batch: number): ProfileReport['kernels'] {
  const work = mkdtempSync(join(tmpdir(), `nincc-${file.replace(/\.model$/, '')}-`));
  try {
    writeFileSync(join(work, file), spec);
    return profileDir(join(work, file), batch, work);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The profile's kernels of a spec file or an emu artifact directory `target` (built with ablations, say) at batch `batch`. */
export function profileDir(target: string, batch: number, cwd = tmpdir()): ProfileReport['kernels'] {
  const r = nincc(['profile', target, '--batch', String(batch), '--precision', 'bf16', '--json'], { cwd, env: { NINCC_NVCC: '0' }, timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`nincc profile ${target}: exit ${r.code}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as ProfileReport).kernels;
}
