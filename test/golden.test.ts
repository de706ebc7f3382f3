// Golden tests: `nincc inspect` prints the seed's two Torch7 printouts exactly.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nincc, root } from './cli-run.js';

const seed = (name: string) => readFileSync(`${root}test/golden/${name}`, 'utf8');
const printout = (stdout: string) => stdout.slice(0, stdout.indexOf('\n}\n') + 3);

describe('nincc inspect golden printouts', () => {
  it('nin-nobn.model prints the seed\'s "Without" network exactly, arrow line included', () => {
    const r = nincc(['inspect', 'models/nin-nobn.model']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(printout(r.stdout)).toBe(seed('nin-nobn.seed.txt'));
  });

  it('nin.model prints the seed\'s "With Batch Normalization" modules (1)-(42), then (43): nn.LogSoftMax', () => {
    const r = nincc(['inspect', 'models/nin.model']);
    expect(r.code).toBe(0);
    const modules = printout(r.stdout).split('\n').filter((l) => /^ {2}\(\d+\): /.test(l));
    const seedModules = seed('nin-bn.seed.txt').split('\n').filter((l) => /^ {2}\(\d+\): /.test(l));
    expect(seedModules).toHaveLength(42);
    expect(modules.slice(0, 42)).toEqual(seedModules);
    expect(modules.slice(42)).toEqual(['  (43): nn.LogSoftMax']);
  });
});
