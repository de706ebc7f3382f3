// What every diagnostic's span must satisfy, whatever the input: inside the file, start before end, and
// line/column that agree with the offset (shared by the diagnostics and mutation tests).
import { positionAt, type Diagnostic, type Position, type Span } from '../grammar/diagnostics.js';

function positionProblem(source: string, p: Position, what: string): string | undefined {
  if (!Number.isInteger(p.offset) || p.offset < 0 || p.offset > source.length) return `${what} offset ${p.offset} outside 0..${source.length}`;
  const expected = positionAt(source, p.offset);
  if (expected.line !== p.line || expected.column !== p.column) {
    return `${what} ${p.line}:${p.column} does not match offset ${p.offset} (${expected.line}:${expected.column})`;
  }
  return undefined;
}

export function spanProblem(source: string, file: string, span: Span): string | undefined {
  if (span.file !== file) return `span names file ${span.file}`;
  if (span.start.offset > span.end.offset) return `span start ${span.start.offset} after end ${span.end.offset}`;
  return positionProblem(source, span.start, 'start') ?? positionProblem(source, span.end, 'end');
}

/** Every broken invariant of a list of diagnostics, as readable lines (empty when all hold). */
export function diagnosticProblems(source: string, file: string, ds: readonly Diagnostic[]): string[] {
  const problems: string[] = [];
  for (const d of ds) {
    const own = spanProblem(source, file, d.span);
    if (own) problems.push(`${d.code} ${d.message}: ${own}`);
    for (const n of d.notes) {
      const p = n.span && spanProblem(source, file, n.span);
      if (p) problems.push(`${d.code} note ${n.message}: ${p}`);
    }
    if (!/^E\d{3}$/.test(d.code)) problems.push(`bad code ${d.code}`);
    if (d.message.length === 0 || d.message.includes('\n')) problems.push(`${d.code} message is empty or has several lines`);
  }
  return problems;
}
