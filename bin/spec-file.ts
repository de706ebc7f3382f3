// Reads and compiles a spec file for a CLI command; diagnostics go to stderr and end the command.
import { readFileSync } from 'node:fs';
import { compileSpec } from '../compiler/pipeline.js';
import type { ShapedModel } from '../compiler/ir.js';
import { hasErrors, renderDiagnostics, type Diagnostic } from '../grammar/diagnostics.js';
import { UsageError } from './command.js';

export interface LoadedSpec {
  readonly source: string;
  readonly model?: ShapedModel;
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
  const r = compileSpec(source, file);
  return { source, diagnostics: r.diagnostics, ...(r.model ? { model: r.model } : {}) };
}

/** The compiled model, or the rendered diagnostics on stderr and an exception that exits with 1. */
export function requireModel(file: string): { model: ShapedModel; source: string } {
  const s = loadSpec(file);
  if (s.diagnostics.length > 0) process.stderr.write(renderDiagnostics(s.diagnostics, s.source) + '\n');
  if (hasErrors(s.diagnostics) || !s.model) throw new SpecError(s.diagnostics.filter((d) => d.severity === 'error').length);
  return { model: s.model, source: s.source };
}

export class SpecError extends Error {
  constructor(readonly count: number) {
    super(`${count} error${count === 1 ? '' : 's'} in the spec`);
  }
}
