// `npm run test:mutants`: applies each mutation of scripts/mutants-list.ts to a temporary copy of the
// tree, rebuilds what it touches, runs the test files that can catch it, and prints mutation → tests
// that failed. First a control run of the same tests on the unmutated copy must pass (--no-control skips
// it). Arguments select mutants by part of their name. Exit 1 when a mutant survives or cannot be applied.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MUTANTS, type Mutant } from './mutants-list.js';
import { packageRoot } from '../compiler/package-root.js';

interface Outcome {
  readonly mutant: Mutant;
  readonly failed: readonly string[];
  readonly problem?: string; // the mutant could not be applied or built
  readonly seconds: number;
  readonly messages?: string; // the failed assertions' first lines
}

const root = packageRoot();

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
}

/** The file holding the mutant's text: its own path, or (after a move) the one tracked file that holds it. */
function locate(m: Mutant, files: readonly string[]): string {
  if (existsSync(join(root, m.file)) && readFileSync(join(root, m.file), 'utf8').includes(m.find)) return m.file;
  // Not the list itself, which holds every mutant's text.
  const holders = files.filter((f) => f !== 'scripts/mutants-list.ts' && existsSync(join(root, f)) && readFileSync(join(root, f), 'utf8').includes(m.find));
  if (holders.length !== 1) throw new Error(`'${m.name}': its text is in ${holders.length} files (${holders.join(', ') || 'none'}), not 1: update scripts/mutants-list.ts`);
  return holders[0];
}

/** A copy of the working tree with node_modules linked and, unless it is to be rebuilt, the built addon copied. */
function copyTree(files: readonly string[], withAddon: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'nincc-mutant-'));
  for (const f of files) {
    if (!existsSync(join(root, f))) continue; // deleted but not yet staged
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(root, f), join(dir, f));
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  // Not for a native rebuild: CMake's cache names the source directory it was configured for.
  if (withAddon) cpSync(join(root, 'runtime/build'), join(dir, 'runtime/build'), { recursive: true });
  return dir;
}

function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv): { code: number; output: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

interface VitestJson {
  testResults: { name: string; assertionResults: { fullName: string; status: string; failureMessages?: string[] }[] }[];
}

function tryMutant(m: Mutant, files: readonly string[]): Outcome {
  const started = Date.now();
  const elapsed = () => (Date.now() - started) / 1000;
  const file = m.find === '' ? m.file : locate(m, files);
  const dir = copyTree(files, !m.native);
  // A kernel cache of its own: a mutated header or template must not meet kernels built from the original.
  const env = { ...process.env, NINCC_CACHE_DIR: join(dir, '.cache') };
  try {
    const text = readFileSync(join(dir, file), 'utf8');
    if (m.find !== '' && text.split(m.find).length !== 2) return { mutant: m, failed: [], problem: `its text is not found exactly once in ${file}`, seconds: elapsed() };
    writeFileSync(join(dir, file), text.replace(m.find, m.replace));
    const tsc = run('npx', ['tsc', '-p', 'tsconfig.json'], dir, env);
    if (tsc.code !== 0) return { mutant: m, failed: [], problem: `tsc failed:\n${tsc.output}`, seconds: elapsed() };
    if (m.native) {
      const cmake = run('npx', ['cmake-js', 'compile', '--out', 'runtime/build/addon', '--log-level', 'error'], dir, env);
      if (cmake.code !== 0) return { mutant: m, failed: [], problem: `the native build failed:\n${cmake.output.slice(-2000)}`, seconds: elapsed() };
    }
    const report = join(dir, 'vitest-report.json');
    const vitest = run('npx', ['vitest', 'run', ...m.tests, ...(m.only ? ['-t', m.only] : []), '--reporter=json', `--outputFile=${report}`], dir, env);
    if (!existsSync(report)) return { mutant: m, failed: [], problem: `vitest wrote no report (exit ${vitest.code}):\n${vitest.output.slice(-2000)}`, seconds: elapsed() };
    const json = JSON.parse(readFileSync(report, 'utf8')) as VitestJson;
    const failed = json.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed').map((a) => `${f.name.replace(`${dir}/`, '')} > ${a.fullName}`));
    const ran = json.testResults.reduce((k, f) => k + f.assertionResults.filter((a) => a.status === 'passed' || a.status === 'failed').length, 0);
    if (ran === 0) return { mutant: m, failed: [], problem: `no test ran (is '${m.only}' a test name in ${m.tests.join(', ')}?)`, seconds: elapsed() };
    // A file that failed to load (no assertions) still counts as caught: vitest's exit status says so.
    if (failed.length === 0 && vitest.code !== 0) return { mutant: m, failed: [`(vitest exit ${vitest.code}; no failed assertion)`], seconds: elapsed() };
    const messages = json.testResults.flatMap((f) => f.assertionResults.flatMap((a) => (a.failureMessages ?? []).map((x) => x.split('\n')[0]))).join('\n');
    return { mutant: m, failed, seconds: elapsed(), ...(messages ? { messages } : {}) };
  } finally {
    if (!process.env.NINCC_KEEP_MUTANTS) rmSync(dir, { recursive: true, force: true });
  }
}

function main(): number {
  const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const chosen = only.length > 0 ? MUTANTS.filter((m) => only.some((o) => m.name.toLowerCase().includes(o.toLowerCase()))) : MUTANTS;
  if (chosen.length === 0) {
    process.stderr.write(`no mutant matches ${only.join(', ')}; the mutants are:\n${MUTANTS.map((m) => `  ${m.name}`).join('\n')}\n`);
    return 2;
  }
  const files = trackedFiles();
  // The control: the same tests on the unmutated tree must pass, or a failure under a mutant proves nothing.
  // One run per distinct (files, -t) selection.
  if (!process.argv.includes('--no-control')) {
    const selections = new Map<string, Mutant>();
    for (const m of chosen) {
      const key = JSON.stringify([m.tests, m.only ?? '']);
      if (!selections.has(key)) selections.set(key, { name: `(control: ${m.tests.join(', ')}${m.only ? ` -t '${m.only}'` : ''})`, file: 'package.json', find: '', replace: '', tests: m.tests, ...(m.only ? { only: m.only } : {}) });
    }
    for (const control of selections.values()) {
      process.stderr.write(`${control.name} on the unmutated tree\n`);
      const c = tryMutant(control, files);
      if (c.problem || c.failed.length > 0) {
        process.stderr.write(`the unmutated tree fails, so no mutant can be judged:\n${c.problem ?? c.failed.join('\n')}\n${c.messages ?? ''}\n`);
        return 1;
      }
      process.stderr.write(`  passes (${c.seconds.toFixed(0)} s)\n`);
    }
  }
  const outcomes: Outcome[] = [];
  for (const m of chosen) {
    process.stderr.write(`mutant: ${m.name} (tests: ${m.tests.join(', ')}${m.only ? ` -t '${m.only}'` : ''})\n`);
    const o = tryMutant(m, files);
    process.stderr.write(`  ${o.problem ? `NOT APPLIED: ${o.problem}` : o.failed.length > 0 ? `caught by ${o.failed.length} failing test(s)` : 'SURVIVED'} (${o.seconds.toFixed(0)} s)\n`);
    outcomes.push(o);
  }
  process.stdout.write('\n| mutation | tests run | tests that failed | verdict |\n|---|---|---|---|\n');
  for (const o of outcomes) {
    const verdict = o.problem ? 'not applied' : o.failed.length > 0 ? 'caught' : 'SURVIVED';
    const failed = o.problem ? o.problem.split('\n')[0] : o.failed.slice(0, 4).join('<br>') + (o.failed.length > 4 ? `<br>… ${o.failed.length - 4} more` : '') || '—';
    process.stdout.write(`| ${o.mutant.name} | ${o.mutant.tests.join(', ')}${o.mutant.only ? ` -t '${o.mutant.only}'` : ''} | ${failed} | ${verdict} (${o.seconds.toFixed(0)} s) |\n`);
  }
  const bad = outcomes.filter((o) => o.problem || o.failed.length === 0);
  process.stdout.write(`\n${outcomes.length - bad.length} of ${outcomes.length} mutants caught\n`);
  return bad.length > 0 ? 1 : 0;
}

process.exitCode = main();
