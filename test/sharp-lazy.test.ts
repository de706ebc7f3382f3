// runtime/sharp.ts: a nincc process loads sharp (libvips) only when it decodes an image; loading it at import took
// up to 1.8 s of every `nincc` process on a loaded 2-core machine (bench/RESULTS.md "ciT: CI time").
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { root } from './cli-run.js';

describe('sharp', () => {
  it('is not loaded by importing the CLI with every command, and is once asked for', () => {
    // libvips in the process's own memory map: whichever module imported sharp, its native library is there.
    const probe = `
      import fs from 'node:fs';
      const vips = () => /libvips/.test(fs.readFileSync('/proc/self/maps', 'utf8'));
      await import('./dist/bin/main.js');
      const before = vips();
      (await import('./dist/runtime/sharp.js')).sharp();
      console.log(JSON.stringify({ before, after: vips() }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ before: false, after: true });
  });
});
