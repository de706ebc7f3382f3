// The nincc CLI: dispatches to one command per file under bin/commands/.
import { helpText, parseCommandArgs, UsageError, type Command } from './command.js';
import { build } from './commands/build.js';
import { check } from './commands/check.js';
import { evalCommand } from './commands/eval.js';
import { trainCommand } from './commands/train.js';
import { inferCommand } from './commands/infer.js';
import { benchCommand } from './commands/bench.js';
import { profileCommand } from './commands/profile.js';
import { tuneCommand } from './commands/tune.js';
import { exportOnnxCommand } from './commands/export-onnx.js';
import { importT7Command } from './commands/import-t7.js';
import { statsCommand } from './commands/stats.js';
import { packCommand } from './commands/pack.js';
import { inspect } from './commands/inspect.js';
import { SpecError } from './spec-file.js';
import { NINCC_VERSION } from '../compiler/emit/plan.js';

const commands: readonly Command[] = [check, inspect, build, trainCommand, evalCommand, inferCommand, benchCommand, profileCommand, tuneCommand, statsCommand, packCommand, importT7Command, exportOnnxCommand];

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'usage: nincc COMMAND [options]',
    '',
    'nincc compiles a declarative model spec (.model) into fused kernels and a runtime that trains and runs it.',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary.split('. ')[0].replace(/\.$/, '')}`),
    '',
    "Run 'nincc COMMAND --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? commands.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write((topic ? helpText(topic) : overview()) + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(`nincc ${NINCC_VERSION}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`nincc: unknown command '${name}'\n\n${overview()}\n`);
    return 2;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args === 'help') {
      process.stdout.write(helpText(command) + '\n');
      return 0;
    }
    return await command.run(args);
  } catch (e) {
    if (e instanceof SpecError) return 1;
    if (e instanceof UsageError) {
      process.stderr.write(`nincc ${name}: ${e.message}\n`);
      return 2;
    }
    // Everything else (a corrupt file, a full disk, a runtime error) is reported as a message, not a
    // stack trace; NINCC_DEBUG=1 shows where it came from.
    const err = e instanceof Error ? e : new Error(String(e));
    process.stderr.write(`nincc ${name}: ${err.message}\n${process.env.NINCC_DEBUG ? `${err.stack}\n` : ''}`);
    return 1;
  }
}
