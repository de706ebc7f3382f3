// The package as npm delivers it: pack the tarball, install it into a fresh project (the addon is
// built there by its install script), type-check and run a TypeScript consumer, and run the CLI.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from './cli-run.js';

function run(command: string, args: readonly string[], cwd: string, timeoutMs = 300_000): { code: number; stdout: string; out: string } {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
  return { code: r.status ?? -1, stdout: r.stdout, out: `${r.stdout}${r.stderr}` };
}

describe('the packed package', () => {
  let work: string;
  let tarball: string;
  let files: string[];
  const consumer = () => join(work, 'consumer');

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-pack-'));
    // --json lists the files. --ignore-scripts: `prepare` (tsc) would rewrite dist/ in place while other
    // test files run bin/nincc from it, which then fails now and then half-loaded (exit 1, no output: twice
    // in CI on 2026-12-06). dist/ is current already: `npm test` compiles it before vitest starts.
    const packed = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
    expect(packed.code, packed.out).toBe(0);
    // The JSON starts at the first line that opens with '[' (anything npm prints before it is skipped).
    const manifest = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, manifest[0].filename);
    files = manifest[0].files.map((f) => f.path);

    mkdirConsumer(consumer(), tarball);
    // The consumer's dependencies come from the npm cache where they are already (this repo installed them).
    const installed = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], consumer());
    expect(installed.code, installed.out).toBe(0);
  }, 600_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the licence, the declarations and the sources the installer builds, and nothing of this machine', () => {
    for (const f of ['LICENSE', 'package.json', 'dist/runtime/index.js', 'dist/runtime/index.d.ts', 'CMakeLists.txt', 'runtime/binding/addon.cc', 'runtime/include/nincc/abi.h', 'compiler/backends/cpu/kernels.cpu.cc.njk', 'compiler/backends/cuda/kernels.cu.njk', 'bin/nincc']) {
      expect(files).toContain(f);
    }
    const unwanted = files.filter((f) => /^(runtime\/build|dist\/(bench|scripts|test)|test|bench|scripts|runtime\/core\/tests|runtime\/(kernels|emu)-test)\//.test(f) || /\.(node|so|map)$|CMakeCache|\.ninja_log/.test(f));
    expect(unwanted).toEqual([]);
  });

  it('builds its addon on the installing machine', () => {
    expect(existsSync(join(consumer(), 'node_modules/nincc/runtime/build/addon/Release/nincc.node'))).toBe(true);
  });

  it('type-checks and runs a TypeScript consumer that builds, trains a step, infers and saves', () => {
    const tsc = run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], consumer());
    expect(tsc.out).toBe('');
    expect(tsc.code).toBe(0);
    const ran = run(process.execPath, ['out/consumer.js'], consumer());
    expect(ran.code, ran.out).toBe(0);
    const result = JSON.parse(ran.out.trim().split('\n').pop()!) as { loss: number; outputs: number; refused: string };
    expect(Number.isFinite(result.loss)).toBe(true);
    expect(result.outputs).toBe(6);
    expect(result.refused).toBe('ERR_NINCC_DISPOSED');
    expect(readdirSync(consumer())).toContain('tiny.safetensors');
  });

  it('runs `npx nincc --help`', () => {
    const help = run('npx', ['--no-install', 'nincc', '--help'], consumer());
    expect(help.code, help.out).toBe(0);
    expect(help.out).toMatch(/^usage: nincc COMMAND/m);
  });
});

/** A new project depending on the tarball, allowed to run its install script (npm 11 asks for that). */
function mkdirConsumer(dir: string, tarball: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { nincc: `file:${tarball}` }, allowScripts: { nincc: true } }, null, 2));
  // Node's types from this repository: the consumer installs nothing but nincc.
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, skipLibCheck: false, outDir: 'out', types: ['node'], typeRoots: [join(root, 'node_modules/@types')] },
    files: ['consumer.ts'],
  }, null, 2));
  copyFileSync(join(root, 'test/package/consumer.ts'), join(dir, 'consumer.ts'));
}
