// Entry point of grammar/: source text → AST plus syntax diagnostics (several per run, thanks to recovery).
import { EOF, type IParserErrorMessageProvider, type IRecognitionException, type IToken, type TokenType } from 'chevrotain';
import type { SpecFile } from './ast.js';
import { cstToAst, tokenSpan } from './cst-to-ast.js';
import { error, positionAt, type Diagnostic, type Span } from './diagnostics.js';
import { SpecParser } from './parser.js';
import { LCurly, RCurly, specLexer } from './tokens.js';

export interface ParseResult {
  readonly ast: SpecFile;
  readonly diagnostics: readonly Diagnostic[];
}

function describe(t: IToken | undefined): string {
  if (!t || t.tokenType === EOF) return 'end of file';
  return `'${t.image}'`;
}

function label(t: TokenType): string {
  return t.LABEL ?? (t.name === 'Identifier' ? 'a name' : t.name);
}

// What a rule is, in the words of the error message ("unexpected ',' in <what>").
const ruleWords: Record<string, string> = {
  spec: "expected 'model' or 'train'",
  modelItem: "expected a layer, a def call, 'def', 'input', 'imageSize', 'transform' or '}'",
  atom: "expected a number, a name or '('",
  unary: "expected a number, a name, '-' or '('",
  value: 'expected a number, a word, a range like 1..9 or dimensions like 3x224x224',
  number: 'expected a number',
  setting: 'expected an option name',
};

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) => `expected ${label(expected)}, found ${describe(actual)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${describe(firstRedundant)}: ${ruleWords.spec}`,
  buildNoViableAltMessage: ({ actual, ruleName }) =>
    `unexpected ${describe(actual[0])}: ${ruleWords[ruleName] ?? `cannot parse ${ruleName}`}`,
  buildEarlyExitMessage: ({ actual, ruleName }) =>
    `unexpected ${describe(actual[0])}: ${ruleWords[ruleName] ?? `expected more in ${ruleName}`}`,
};

// One parser instance: chevrotain parsers are reusable and costly to build.
const parser = new SpecParser();
(parser as unknown as { errorMessageProvider: IParserErrorMessageProvider }).errorMessageProvider = messages;

/** The '{' tokens that no '}' closes, innermost last. */
function unclosedBraces(tokens: readonly IToken[]): IToken[] {
  const stack: IToken[] = [];
  for (const t of tokens) {
    if (t.tokenType === LCurly) stack.push(t);
    else if (t.tokenType === RCurly) stack.pop();
  }
  return stack;
}

export function parseSpec(source: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const eof = positionAt(source, source.length);
  const lexed = specLexer.tokenize(source);
  for (const e of lexed.errors) {
    const start = { offset: e.offset, line: e.line ?? 1, column: e.column ?? 1 };
    const span: Span = { file, start, end: { ...start, offset: e.offset + 1, column: start.column + 1 } };
    diagnostics.push(error('E003', `unexpected character '${source[e.offset]}'`, span));
  }

  parser.input = lexed.tokens;
  const cst = parser.spec();
  const unclosed = unclosedBraces(lexed.tokens);
  const seen = new Set<number>();
  for (const e of parser.errors as IRecognitionException[]) {
    const t = e.token;
    const atEof = t.tokenType === EOF || !Number.isFinite(t.startOffset);
    if (atEof && unclosed.length > 0) {
      const brace = unclosed[unclosed.length - 1];
      if (seen.has(-brace.startOffset - 1)) continue;
      seen.add(-brace.startOffset - 1);
      diagnostics.push(
        error('E002', `unterminated block: this '{' is never closed (expected '}' before the end of the file)`, tokenSpan(file, brace)),
      );
      continue;
    }
    const offset = atEof ? source.length : t.startOffset;
    if (seen.has(offset)) continue;
    seen.add(offset);
    const span: Span = atEof ? { file, start: eof, end: eof } : tokenSpan(file, t);
    diagnostics.push(error('E001', e.message, span));
  }
  diagnostics.sort((a, b) => a.span.start.offset - b.span.start.offset);
  return { ast: cstToAst(cst, file, eof), diagnostics };
}
