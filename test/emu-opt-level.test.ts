// The emu library's optimization level (NINCC_EMU_OPT, compiler/backends/cuda/toolchain.ts): -O2 for users, -O1 for the
// tests (vitest.config.ts, to cut CI's cold-cache compiles: bench/logs/ciU-times.md), a bad value refused, the level in
// the command and so in the cache key; ASan builds carry -g1's line tables. Builds nothing: the commands only.
import { describe, expect, it } from 'vitest';
import { emuCompilerCommand, emuOptFlag } from '../compiler/backends/cuda/toolchain.js';
import { ToolchainError } from '../compiler/backends/compile-cached.js';
import { withEnv } from './reference/env.js';

const optLevels = (command: readonly string[]) => command.filter((a) => /^-O/.test(a));

describe('NINCC_EMU_OPT', () => {
  it('the tests build their emu libraries at -O1 (vitest.config.ts), nincc otherwise at -O2', () => {
    expect(process.env.NINCC_EMU_OPT).toBe('-O1');
    expect(optLevels(emuCompilerCommand('k.cu', 'k.so'))).toEqual(['-O1']);
    withEnv({ NINCC_EMU_OPT: undefined }, () => {
      expect(emuOptFlag()).toBe('-O2');
      expect(optLevels(emuCompilerCommand('k.cu', 'k.so'))).toEqual(['-O2']);
    });
    withEnv({ NINCC_EMU_OPT: '' }, () => expect(emuOptFlag()).toBe('-O2'));
    withEnv({ NINCC_EMU_OPT: '-O3' }, () => expect(optLevels(emuCompilerCommand('k.cu', 'k.so'))).toEqual(['-O3']));
  });

  it('refuses a value that is not -O0 to -O3', () => {
    for (const bad of ['O1', '-O4', '-Os', '-O1 -g', '-march=native']) {
      withEnv({ NINCC_EMU_OPT: bad }, () => expect(() => emuOptFlag()).toThrow(ToolchainError));
      withEnv({ NINCC_EMU_OPT: bad }, () => expect(() => emuOptFlag()).toThrow(`NINCC_EMU_OPT=${bad}: expected -O0, -O1, -O2 or -O3`));
    }
  });

  it('ASan builds compile with -g1 (line tables for the reports), not full -g', () => {
    const asan = withEnv({ NINCC_EMU_ASAN: '1' }, () => emuCompilerCommand('k.cu', 'k.so'));
    expect(asan).toEqual(expect.arrayContaining(['-g1', '-fsanitize=address', '-fno-omit-frame-pointer']));
    expect(asan).not.toContain('-g');
    expect(withEnv({ NINCC_EMU_ASAN: undefined }, () => emuCompilerCommand('k.cu', 'k.so'))).not.toContain('-g1');
  });
});
