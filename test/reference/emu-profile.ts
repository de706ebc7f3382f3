// The emulator's per-launch profile counters of one run (docs/profile.md): NINCC_EMU_PROFILE names the file each
// launch appends to, NINCC_EMU_PROFILE_SAMPLE=0 runs every block. For the A/B tests that compare two builds' counters.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Each kernel's counters over `run` (its last launch where a kernel runs twice), every block run; one run at a time: the file is named by the environment. */
export async function profiledLaunches(run: () => Promise<unknown>): Promise<Map<string, Record<string, number>>> {
  const work = mkdtempSync(join(tmpdir(), 'nincc-emu-profile-'));
  const file = join(work, 'counters.jsonl');
  const saved = { path: process.env.NINCC_EMU_PROFILE, sample: process.env.NINCC_EMU_PROFILE_SAMPLE };
  try {
    process.env.NINCC_EMU_PROFILE = file;
    process.env.NINCC_EMU_PROFILE_SAMPLE = '0';
    await run();
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Record<string, number> & { kernel: string });
    return new Map(lines.map((l) => [l.kernel, l]));
  } finally {
    for (const [key, value] of [['NINCC_EMU_PROFILE', saved.path], ['NINCC_EMU_PROFILE_SAMPLE', saved.sample]] as const)
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    rmSync(work, { recursive: true, force: true });
  }
}
