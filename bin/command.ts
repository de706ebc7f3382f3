// What a CLI command is (name, usage, options, run) and the shared parsing of its arguments and --help.
import { parseArgs } from 'node:util';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly value?: string; // placeholder shown in --help, e.g. DIR
  readonly help: string;
  readonly multiple?: boolean;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly usage: string; // after `nincc NAME`
  readonly details?: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

/** A user mistake on the command line: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** The width help is wrapped to: the terminal's, else 80 (pipes, CI logs). */
export function helpWidth(): number {
  return Math.max(40, process.stdout.columns || 80);
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own), each after `indent`. */
export function wrapText(text: string, width: number, indent = ''): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(indent + line);
  return lines;
}

export function helpText(c: Command, width = helpWidth()): string {
  const lines = [`usage: nincc ${c.name} ${c.usage}`, '', ...wrapText(c.summary, width)];
  if (c.details) for (const paragraph of c.details.split('\n')) lines.push('', ...wrapText(paragraph, width));
  const opts = Object.entries({ ...c.options, help: { type: 'boolean', help: 'show this help' } as OptionSpec });
  lines.push('', 'options:');
  const left = opts.map(([name, o]) => `  ${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`);
  const column = Math.max(...left.map((l) => l.length)) + 2;
  // Option help sits in a column beside the names; on a narrow terminal, on the lines below them.
  const beside = width - column >= 30;
  opts.forEach(([, o], i) => {
    if (beside) {
      const wrapped = wrapText(o.help, width, ' '.repeat(column));
      lines.push(left[i].padEnd(column) + wrapped[0].slice(column), ...wrapped.slice(1));
    } else lines.push(left[i], ...wrapText(o.help, width, '      '));
  });
  return lines.join('\n');
}

export function parseCommandArgs(c: Command, argv: readonly string[]): ParsedArgs | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, o] of Object.entries(c.options)) {
    options[name] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    if (values.help) return 'help';
    return { values: values as ParsedArgs["values"], positionals };
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace(/\. To specify a positional argument.*$/s, '')}\n(see 'nincc ${c.name} --help')`);
  }
}

export function stringOption(a: ParsedArgs, name: string): string | undefined {
  const v = a.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function intOption(a: ParsedArgs, name: string, min = 1): number | undefined {
  const v = stringOption(a, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer of at least ${min}, got '${v}'`);
  return n;
}

export function numberOption(a: ParsedArgs, name: string): number | undefined {
  const v = stringOption(a, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${v}'`);
  return n;
}

export function onePositional(a: ParsedArgs, c: Command, what: string): string {
  if (a.positionals.length !== 1) throw new UsageError(`nincc ${c.name} takes one ${what}, got ${a.positionals.length === 0 ? 'none' : a.positionals.join(' ')}\nusage: nincc ${c.name} ${c.usage}`);
  return a.positionals[0];
}
