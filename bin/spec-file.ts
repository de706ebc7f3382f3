// Reads and compiles a spec file for a CLI command; diagnostics go to stderr and end the command.
import { readFileSync } from 'node:fs';
import { analyzeSpec, compileSpec } from '../compiler/pipeline.js';
import type { ShapedModel, ShapedNetwork } from '../compiler/ir.js';
import { hasErrors, renderDiagnostics, type Diagnostic } from '../grammar/diagnostics.js';
import { UsageError } from './command.js';

/** A spec as the front end describes it (nincc check, inspect): any network, lowerable or not. */
export interface LoadedSpec {
  readonly source: string;
  readonly network?: ShapedNetwork;
  readonly diagnostics: readonly Diagnostic[];
}

export function readSource(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `${file}: no such file` : code === 'EISDIR' ? `${file}: is a directory, expected a .model file` : `${file}: ${(e as Error).message}`);
  }
}

export function loadSpec(file: string): LoadedSpec {
  const source = readSource(file);
  const r = analyzeSpec(source, file);
  return { source, diagnostics: r.diagnostics, ...(r.network ? { network: r.network } : {}) };
}

/** Diagnostics to stderr; an exception that exits with 1 when there is an error or no result. */
function requireResult<T>(source: string, diagnostics: readonly Diagnostic[], result: T | undefined): T {
  if (diagnostics.length > 0) process.stderr.write(renderDiagnostics(diagnostics, source) + '\n');
  if (hasErrors(diagnostics) || result === undefined) throw new SpecError(diagnostics.filter((d) => d.severity === 'error').length);
  return result;
}

/** The network as the front end describes it (for inspect), or the diagnostics on stderr and exit 1. */
export function requireNetwork(file: string): { network: ShapedNetwork; source: string } {
  const s = loadSpec(file);
  return { network: requireResult(s.source, s.diagnostics, s.network), source: s.source };
}

/** The model lowering takes (for build, train, infer, export), or the diagnostics on stderr and exit 1. */
export function requireModel(file: string): { model: ShapedModel; source: string } {
  const source = readSource(file);
  const r = compileSpec(source, file);
  return { model: requireResult(source, r.diagnostics, r.model), source };
}

export class SpecError extends Error {
  constructor(readonly count: number) {
    super(`${count} error${count === 1 ? '' : 's'} in the spec`);
  }
}
