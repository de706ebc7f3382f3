// scripts/check-spills.ts's command line: --help, and a clear refusal of an unknown option or a --gpu without a name
// (an option used to be taken for a model file, and failed later as "ENOENT" once per precision).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from './cli-run.js';

const script = join(root, 'dist/scripts/check-spills.js');
const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });

describe('check-spills options', () => {
  it('--help prints the usage and exits 0 without compiling', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: node dist\/scripts\/check-spills\.js \[--gpu NAME\] \[MODEL\.model \.\.\.\]/);
    expect(r.stdout).toContain('\n  --gpu NAME ');
  });

  it('names an unknown option, and a --gpu without a name, with exit 2', () => {
    const bad = run('--bogus', 'models/nin.model');
    expect([bad.status, bad.stderr.split('\n')[0]]).toEqual([2, 'check-spills: unknown option --bogus']);
    const noName = run('--gpu');
    expect([noName.status, noName.stderr.split('\n')[0]]).toEqual([2, 'check-spills: --gpu needs a GPU name (e.g. h100)']);
  });
});
