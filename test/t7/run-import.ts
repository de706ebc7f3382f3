// Runs `nincc import-t7 …` as a user would, from the built dist/. While bin/main.ts does not list the
// command yet, a stand-in main runs it with the same argument parsing, error handling and exit codes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { nincc, root, type CliResult } from '../cli-run.js';

function registered(): boolean {
  try {
    return readFileSync(`${root}dist/bin/main.js`, 'utf8').includes('importT7Command');
  } catch {
    return false;
  }
}

// What bin/main.ts does for one command: parse, --help, run; UsageError → exit 2, SpecError → exit 1.
const standInMain = `
const root = ${JSON.stringify(root)};
const { helpText, parseCommandArgs, UsageError } = await import(root + 'dist/bin/command.js');
const { SpecError } = await import(root + 'dist/bin/spec-file.js');
const { importT7Command } = await import(root + 'dist/bin/commands/import-t7.js');
try {
  const args = parseCommandArgs(importT7Command, process.argv.slice(1));
  if (args === 'help') { process.stdout.write(helpText(importT7Command) + '\\n'); process.exitCode = 0; }
  else process.exitCode = await importT7Command.run(args);
} catch (e) {
  if (e instanceof SpecError) process.exitCode = 1;
  else if (e instanceof UsageError) { process.stderr.write('nincc import-t7: ' + e.message + '\\n'); process.exitCode = 2; }
  else { console.error(e && e.stack ? e.stack : String(e)); process.exitCode = 1; }
}
`;

export function importT7(args: readonly string[]): CliResult {
  if (registered()) return nincc(['import-t7', ...args]);
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', standInMain, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
