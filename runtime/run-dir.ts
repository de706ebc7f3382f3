// A training run's directory: created and proven writable before the first step, cleared of temporary
// checkpoint files a killed run left behind, and the durable log and checkpoint writes into it.
import { appendFileSync, closeSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from './model.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'log.jsonl';

export class TrainingError extends Error {}

/** Whether a process with this id is running (a temporary file of a live run must not be deleted). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // ours are never in flight while the run starts
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `checkpoint.safetensors.tmp-<pid>` files whose writer is gone (killed mid-write). */
export function staleCheckpointTemps(runDir: string): string[] {
  const prefix = `${CHECKPOINT_FILE}.tmp-`;
  return readdirSync(runDir)
    .filter((f) => f.startsWith(prefix) && /^\d+$/.test(f.slice(prefix.length)))
    .filter((f) => !processAlive(Number(f.slice(prefix.length))));
}

/**
 * Creates the run directory, checks a file can be written in it (so a read-only directory fails now,
 * not after an epoch of training) and removes stale temporary checkpoints. Returns the names removed.
 */
export function prepareRunDir(runDir: string): string[] {
  try {
    mkdirSync(runDir, { recursive: true });
  } catch (e) {
    throw new TrainingError(`cannot create the run directory ${runDir}: ${(e as Error).message}`);
  }
  const probe = join(runDir, `.write-check-${process.pid}`);
  try {
    writeFileSync(probe, '');
    unlinkSync(probe);
  } catch (e) {
    throw new TrainingError(`the run directory ${runDir} is not writable (${(e as Error).message}); checkpoints could not be saved: choose another with -o`);
  }
  const stale = staleCheckpointTemps(runDir);
  for (const f of stale) rmSync(join(runDir, f), { force: true });
  return stale;
}

export function appendDurably(path: string, line: string): void {
  appendFileSync(path, line);
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes weights and optimizer state atomically; a failure says whether an older checkpoint survives. */
export async function saveCheckpoint(model: Model, path: string, meta: Record<string, string>, lastGood: string): Promise<void> {
  try {
    await model.save(path, meta, { optimizer: true });
  } catch (e) {
    throw new TrainingError(`cannot write the checkpoint ${path}: ${(e as Error).message}; ${lastGood}`);
  }
}
