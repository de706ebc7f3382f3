// bench/cpu/options.ts: bench:cpu's command line (it had no --help, and an unknown option threw ERR_PARSE_ARGS_UNKNOWN_OPTION).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CPU_BENCH_USAGE, parseCpuBenchArgs } from '../bench/cpu/options.js';
import { root } from './cli-run.js';

describe('bench:cpu options', () => {
  it('reads the defaults and each option', () => {
    expect(parseCpuBenchArgs([])).toEqual({ runs: 15, warmup: 3, standaloneRuns: 15, models: ['models/nin.model', 'models/nin-fashion.model', 'models/resnet-50.model'], work: 'build/bench-cpu', seed: 1, json: undefined });
    expect(parseCpuBenchArgs(['--runs', '9', '--standalone', '4', '--warmup', '0', '--models', 'models/nin-fashion.model', '--json', 'x.json'])).toMatchObject({ runs: 9, standaloneRuns: 4, warmup: 0, models: ['models/nin-fashion.model'], json: 'x.json' });
  });

  it('gives --help (and -h), naming every option', () => {
    expect(parseCpuBenchArgs(['--help'])).toBe('help');
    expect(parseCpuBenchArgs(['-h', '--runs', '3'])).toBe('help');
    for (const o of ['--runs N', '--warmup N', '--standalone N', '--models SPECS', '--work DIR', '--seed N', '--json FILE', '--help']) expect(CPU_BENCH_USAGE).toContain(`\n  ${o} `);
  });

  it('names the option that is wrong', () => {
    expect(parseCpuBenchArgs(['--bogus'])).toEqual({ error: "Unknown option '--bogus'" });
    expect(parseCpuBenchArgs(['--runs', '0'])).toEqual({ error: "--runs must be an integer of at least 1, got '0'" });
    expect(parseCpuBenchArgs(['--warmup', '1.5'])).toEqual({ error: "--warmup must be an integer of at least 0, got '1.5'" });
    expect(parseCpuBenchArgs(['--models', ','])).toEqual({ error: '--models names no spec' });
  });

  it('the script prints them and exits 0 or 2 before building anything', () => {
    const script = join(root, 'dist/bench/cpu.js');
    const help = spawnSync(process.execPath, [script, '--help'], { encoding: 'utf8' });
    expect([help.status, help.stdout.trim()]).toEqual([0, CPU_BENCH_USAGE]);
    const bad = spawnSync(process.execPath, [script, '--bogus'], { encoding: 'utf8' });
    expect([bad.status, bad.stderr.split('\n')[0]]).toEqual([2, "bench/cpu.js: Unknown option '--bogus'"]);
  });
});
