// Diagnostics as plain data ({code, severity, message, span, notes}) and their rendering with a caret line.

export interface Position {
  readonly offset: number; // 0-based character offset
  readonly line: number; // 1-based
  readonly column: number; // 1-based
}

export interface Span {
  readonly file: string;
  readonly start: Position;
  readonly end: Position; // exclusive offset; line/column of the last character + 1
}

export interface Note {
  readonly message: string;
  readonly span?: Span;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly span: Span;
  readonly notes: readonly Note[];
}

export function error(code: string, message: string, span: Span, notes: readonly Note[] = []): Diagnostic {
  return { code, severity: 'error', message, span, notes };
}

export function warning(code: string, message: string, span: Span, notes: readonly Note[] = []): Diagnostic {
  return { code, severity: 'warning', message, span, notes };
}

export function formatPosition(span: Span): string {
  return `${span.file}:${span.start.line}:${span.start.column}`;
}

const maxShownLine = 160;

/** `file:line:col: error CODE: message`, the source line, a caret line under the span, then the notes. */
export function renderDiagnostic(d: Diagnostic, source: string): string {
  const lines = [`${formatPosition(d.span)}: ${d.severity} ${d.code}: ${d.message}`];
  const whole = sourceLine(source, d.span.start.line);
  if (whole !== undefined) {
    // A generated line may be megabytes long: show a window around the caret, elided with '…' on each side.
    const from = whole.length > maxShownLine ? Math.max(0, d.span.start.column - 1 - maxShownLine / 2) : 0;
    const text = `${from > 0 ? '…' : ''}${whole.slice(from, from + maxShownLine)}${from + maxShownLine < whole.length ? '…' : ''}`;
    const column = d.span.start.column - from + (from > 0 ? 1 : 0);
    const width = d.span.end.line === d.span.start.line ? Math.max(1, d.span.end.column - d.span.start.column) : 1;
    lines.push(`  ${text}`);
    lines.push(`  ${' '.repeat(column - 1)}${'^'.repeat(Math.min(width, Math.max(1, text.length - column + 1)))}`);
  }
  for (const note of d.notes) lines.push(`  note: ${note.message}`);
  return lines.join('\n');
}

export function renderDiagnostics(ds: readonly Diagnostic[], source: string): string {
  return ds.map((d) => renderDiagnostic(d, source)).join('\n');
}

export function hasErrors(ds: readonly Diagnostic[]): boolean {
  return ds.some((d) => d.severity === 'error');
}

function sourceLine(source: string, line: number): string | undefined {
  const all = source.split('\n');
  const text = all[line - 1];
  return text === undefined ? undefined : text.replace(/\r$/, '').replace(/\t/g, ' ');
}

/** The position of a character offset in a source text (used for spans built outside the lexer). */
export function positionAt(source: string, offset: number): Position {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}
