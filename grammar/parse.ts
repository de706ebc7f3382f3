// Entry point of grammar/: source text → AST plus syntax diagnostics (several per run, thanks to recovery).
import type { IParserErrorMessageProvider, IRecognitionException, IToken, TokenType } from 'chevrotain';
import { EOF } from './chevrotain.js';
import type { SpecFile } from './ast.js';
import { cstToAst, tokenSpan } from './cst-to-ast.js';
import { error, positionAt, type Diagnostic, type Position, type Span } from './diagnostics.js';
import { checkIntegerLiterals, checkLayerLines, checkTokenLimits, sourceTooLong } from './limits.js';
import { closest } from './near-miss.js';
import { maxSyntaxErrors, SpecParser } from './parser.js';
import { Dims, Identifier, ImageSize, Input, Integer, LCurly, LParen, Minus, Model, RCurly, RParen, specLexer, Train, Transform } from './tokens.js';

export interface ParseResult {
  readonly ast: SpecFile;
  readonly diagnostics: readonly Diagnostic[];
  /**
   * The tree is what the author meant despite the errors: each one was repaired where it stood (a misspelled
   * keyword before what it takes, `inptu 1x28x28` or `modle m {`, read as the keyword) or skipped whole (a `//` line),
   * so the semantic passes may run on it. Any other syntax error leaves a recovered, partial tree.
   */
  readonly intact: boolean;
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

// What may come instead of a missing closing token, by rule: "expected ')'" alone hides the missing comma.
const closerWords: Record<string, string> = {
  'call:RParen': "',' or ')'",
  'def:RParen': "',' or ')'",
  'def:RCurly': "a layer, a def call or '}'",
  'container:RCurly': "a layer, a def call, a block or '}'",
  'method:Identifier': "a method name like ceil or noBias",
  'method:RParen': "')' (methods take no arguments)",
  'block:RCurly': "an option name or '}'",
};

function mismatchMessage(expected: TokenType, actual: IToken, previous: IToken | undefined, ruleName: string): string {
  const found = describe(actual);
  if (expected === EOF) return `unexpected ${found}: ${ruleWords.spec}`;
  if (expected === RCurly && ruleName === 'model') return `unexpected ${found}: ${ruleWords.modelItem}`;
  if (expected === RParen && previous?.tokenType === LParen && (ruleName === 'call' || ruleName === 'def')) {
    return `expected ${ruleName === 'call' ? 'an argument' : 'a parameter name'} or ')', found ${found}`;
  }
  const words = closerWords[`${ruleName}:${expected.name}`];
  return words ? `expected ${words}, found ${found}` : `expected ${label(expected)}, found ${found}`;
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual, previous, ruleName }) => mismatchMessage(expected, actual, previous, ruleName),
  buildNotAllInputParsedMessage: ({ firstRedundant }) => `unexpected ${describe(firstRedundant)}: ${ruleWords.spec}`,
  buildNoViableAltMessage: ({ actual, ruleName }) =>
    `unexpected ${describe(actual[0])}: ${ruleWords[ruleName] ?? `cannot parse ${ruleName}`}`,
  buildEarlyExitMessage: ({ actual, ruleName }) =>
    `unexpected ${describe(actual[0])}: ${ruleWords[ruleName] ?? `expected more in ${ruleName}`}`,
};

// One parser instance: chevrotain parsers are reusable and costly to build.
const parser = new SpecParser();
(parser as unknown as { errorMessageProvider: IParserErrorMessageProvider }).errorMessageProvider = messages;

interface Braces {
  /** The '{' tokens that no '}' closes, innermost last. */
  readonly unclosed: IToken[];
  /** Pairs whose '}' opens its line at another indentation than the '{' line: the likely misplaced ones. */
  readonly misindented: { open: IToken; close: IToken }[];
  /** For a token outside every block: the '}' that closed the last top-level block before it. */
  readonly topLevelClose: Map<IToken, { open: IToken; close: IToken }>;
}

function matchBraces(source: string, tokens: readonly IToken[]): Braces {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const blanks = /[ \t]*/y;
  const indent = (line: number) => {
    blanks.lastIndex = lineStarts[line - 1] ?? 0;
    return blanks.exec(source)![0].length;
  };
  const opensLine = (t: IToken) => indent(t.startLine ?? 1) === (t.startColumn ?? 1) - 1;
  const stack: IToken[] = [];
  const misindented: Braces['misindented'] = [];
  const topLevelClose: Braces['topLevelClose'] = new Map();
  let lastTop: { open: IToken; close: IToken } | undefined;
  for (const t of tokens) {
    if (t.tokenType === LCurly) stack.push(t);
    else if (t.tokenType === RCurly) {
      const open = stack.pop();
      if (open && open.startLine !== t.startLine && opensLine(t) && indent(open.startLine ?? 1) !== (t.startColumn ?? 1) - 1) {
        misindented.push({ open, close: t });
      }
      if (!open && lastTop) topLevelClose.set(t, lastTop); // a stray '}'
      if (open && stack.length === 0) lastTop = { open, close: t };
    } else if (stack.length === 0 && lastTop) topLevelClose.set(t, lastTop);
  }
  return { unclosed: stack, misindented, topLevelClose };
}

const printable = /^[\p{L}\p{N}\p{P}\p{S}]$/u;
const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
// Look-alikes that editors and copy-paste bring in, and the character meant.
const lookAlikes: Record<string, string> = { '−': '-', '–': '-', '—': '-', '×': 'x', '，': ',', '（': '(', '）': ')', '｛': '{', '｝': '}' };

/** `';'`, `'∑' (U+2211)`, `U+200B`: quoted when printable, with the code point when not plain ASCII. */
function describeCharacters(text: string): string {
  const chars = [...text];
  const shown = chars.length > 8 ? chars.slice(0, 8) : chars;
  const ascii = shown.every((c) => c >= '!' && c <= '~');
  const list = ascii ? `'${shown.join('')}'` : shown.map((c) => (printable.test(c) ? `'${c}' (${codePoint(c)})` : codePoint(c))).join(' ');
  const more = chars.length > shown.length ? ' …' : '';
  const hint = chars.length === 1 && lookAlikes[chars[0]] ? ` (did you mean '${lookAlikes[chars[0]]}'?)` : '';
  return `unexpected character${chars.length === 1 ? '' : 's'} ${list}${more}${hint}`;
}

// The parser recurses once per '(' '{' or unary '-'; far past any real spec, stop before the stack does.
const maxNesting = 64;

/** The first token nested deeper than maxNesting, if any. */
function tooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  let minuses = 0;
  for (const t of tokens) {
    if (t.tokenType === LParen || t.tokenType === LCurly) depth++;
    else if (t.tokenType === RParen || t.tokenType === RCurly) depth = Math.max(0, depth - 1);
    minuses = t.tokenType === Minus ? minuses + 1 : 0;
    if (depth + minuses > maxNesting) return t;
  }
  return undefined;
}

const emptyAst = (file: string, source: string, eof: Position): SpecFile => ({ file, models: [], trains: [], span: { file, start: positionAt(source, 0), end: eof } });

/** One error for the `//` comments of a file, at the first: the hint once instead of an error per '/'. */
function slashComments(file: string, comments: readonly IToken[] | undefined): Diagnostic[] {
  if (!comments || comments.length === 0) return [];
  const more = comments.length - 1;
  const next = more > 0 ? `${file}:${comments[1].startLine}:${comments[1].startColumn}` : '';
  const notes = more > 0 ? [{ message: more === 1 ? `1 more line uses '//' (at ${next})` : `${more} more lines use '//' (the next at ${next})` }] : [];
  return [error('E003', "'//' does not start a comment in a spec: use '#' or '--'", tokenSpan(file, comments[0]), notes)];
}

/** Where `t` is in the file's tokens (binary search by offset; chevrotain's previousToken is not the one before). */
function tokenIndex(tokens: readonly IToken[], t: IToken): number {
  let low = 0;
  let high = tokens.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (tokens[mid].startOffset < t.startOffset) low = mid + 1;
    else high = mid;
  }
  return low;
}

// Each header keyword, its token and the token its operand starts with.
const headerKeywords: Record<string, { keyword: TokenType; operand: TokenType }> = {
  input: { keyword: Input, operand: Dims },
  imageSize: { keyword: ImageSize, operand: Integer },
  transform: { keyword: Transform, operand: LCurly },
};
// Each top-level keyword, its token and the tokens that follow it.
const topKeywords: Record<string, { keyword: TokenType; then: readonly TokenType[] }> = {
  model: { keyword: Model, then: [Identifier, LCurly] },
  train: { keyword: Train, then: [LCurly] },
};

interface Misspelling {
  readonly diagnostic: Diagnostic;
  /** The word as the keyword token, when its operand follows it in a model body: the tree can be repaired. */
  readonly repair?: { readonly word: IToken; readonly keyword: IToken };
}

const misspelling = (file: string, word: IToken, meant: string, keyword: TokenType | undefined): Misspelling => ({
  diagnostic: error('E001', `unknown keyword '${word.image}' (did you mean '${meant}'?)`, tokenSpan(file, word)),
  ...(keyword ? { repair: { word, keyword: { ...word, tokenType: keyword, tokenTypeIdx: keyword.tokenTypeIdx! } } } : {}),
});

/**
 * `inptu 1x28x28`: a misspelled header keyword lexes as a layer name followed by a stray value, `modle m {` as a
 * stray name at the top level; name the word. It can be read as the keyword meant where that keyword's operand
 * follows it (a header item only between a model's items, not in a def, where it is an error anyway).
 */
function misspelledKeyword(file: string, e: IRecognitionException, tokens: readonly IToken[]): Misspelling | undefined {
  const bad = e.token;
  const at = tokenIndex(tokens, bad);
  const rule = e.context.ruleStack[e.context.ruleStack.length - 1];
  if (bad.tokenType === Identifier && rule === 'spec') {
    const meant = closest(bad.image, Object.keys(topKeywords));
    if (!meant) return undefined;
    const { keyword, then } = topKeywords[meant];
    return misspelling(file, bad, meant, then.every((type, i) => tokens[at + 1 + i]?.tokenType === type) ? keyword : undefined);
  }
  const previous = tokens[at - 1];
  if (!previous || previous.tokenType !== Identifier || (bad.tokenType !== Dims && bad.tokenType !== Integer && bad.tokenType !== LCurly)) return undefined;
  const meant = closest(previous.image, Object.keys(headerKeywords));
  if (!meant) return undefined;
  const { keyword, operand } = headerKeywords[meant];
  return misspelling(file, previous, meant, rule === 'model' && bad.tokenType === operand ? keyword : undefined);
}

// A repair may let the parser reach a misspelling its recovery skipped before: a few rounds, each one parse.
const maxRepairRounds = 4;

/**
 * Parse, and while the errors include misspelled header keywords before their operands, parse again with those
 * words read as the keywords. Returns the last parse and the repaired words' diagnostics.
 */
function parseRepairing(file: string, tokens: IToken[]) {
  const repaired: Diagnostic[] = [];
  for (let round = 0; ; round++) {
    parser.input = tokens;
    const cst = parser.spec();
    const errors = parser.errors as IRecognitionException[];
    const found = round < maxRepairRounds ? errors.map((e) => misspelledKeyword(file, e, tokens)) : [];
    const replace = new Map<IToken, IToken>();
    for (const m of found) {
      if (!m?.repair) continue;
      replace.set(m.repair.word, m.repair.keyword);
      repaired.push(m.diagnostic);
    }
    if (replace.size === 0) return { cst, errors, tokens, repaired };
    tokens = tokens.map((t) => replace.get(t) ?? t);
  }
}

export function parseSpec(source: string, file: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const eof = positionAt(source, source.length);
  const tooLong = sourceTooLong(source.length);
  if (tooLong) return { ast: emptyAst(file, source, eof), diagnostics: [error('E004', tooLong, { file, start: positionAt(source, 0), end: positionAt(source, 1) })], intact: false };
  const lexed = specLexer.tokenize(source);
  const slash = slashComments(file, lexed.groups.slashComments);
  diagnostics.push(...slash);
  for (const e of lexed.errors) {
    // chevrotain reports a run of unknown characters once; the run never holds a '\n' (whitespace lexes).
    const start = { offset: e.offset, line: e.line ?? 1, column: e.column ?? 1 };
    const length = Math.max(1, e.length);
    const span: Span = { file, start, end: { ...start, offset: e.offset + length, column: start.column + length } };
    diagnostics.push(error('E003', describeCharacters(source.slice(e.offset, e.offset + length)), span));
  }

  const deep = tooDeep(lexed.tokens);
  if (deep) {
    diagnostics.push(error('E001', `nesting deeper than ${maxNesting} levels of '(', '{' or '-'`, tokenSpan(file, deep)));
    return { ast: emptyAst(file, source, eof), diagnostics, intact: false };
  }
  diagnostics.push(...checkIntegerLiterals(file, lexed.tokens));
  const overLimit = checkTokenLimits(file, lexed.tokens);
  if (overLimit.length > 0) {
    diagnostics.push(...overLimit);
    return { ast: emptyAst(file, source, eof), diagnostics: diagnostics.sort((a, b) => a.span.start.offset - b.span.start.offset), intact: false };
  }

  const { cst, errors, tokens, repaired } = parseRepairing(file, lexed.tokens);
  const braces = matchBraces(source, lexed.tokens);
  const at = (t: IToken) => `${file}:${t.startLine}:${t.startColumn}`;
  const seen = new Set<number>();
  const syntax: Diagnostic[] = [];
  for (const e of errors) {
    const t = e.token;
    const atEof = t.tokenType === EOF || !Number.isFinite(t.startOffset);
    if (atEof && braces.unclosed.length > 0) {
      const brace = braces.unclosed[braces.unclosed.length - 1];
      if (seen.has(-brace.startOffset - 1)) continue;
      seen.add(-brace.startOffset - 1);
      const notes = braces.misindented.map(({ open, close }) => ({
        message: `perhaps the '{' at ${at(open)} is the one left open: the '}' at ${at(close)} that closes it is indented differently`,
        span: tokenSpan(file, open),
      }));
      syntax.push(error('E002', `unterminated block: this '{' is never closed (expected '}' before the end of the file)`, tokenSpan(file, brace), notes.slice(0, 1)));
      continue;
    }
    const offset = atEof ? source.length : t.startOffset;
    if (seen.has(offset)) continue;
    seen.add(offset);
    const span: Span = atEof ? { file, start: eof, end: eof } : tokenSpan(file, t);
    const closed = atEof ? undefined : braces.topLevelClose.get(t);
    const notes = closed ? [{ message: `the '}' at ${at(closed.close)} closes the block opened at ${at(closed.open)}`, span: tokenSpan(file, closed.close) }] : [];
    const keyword = atEof ? undefined : misspelledKeyword(file, e, tokens)?.diagnostic;
    syntax.push(keyword ?? error('E001', e.message, span, notes));
  }
  syntax.push(...repaired);
  const last = errors[errors.length - 1];
  if (errors.length >= maxSyntaxErrors && Number.isFinite(last.token.startOffset)) {
    syntax.push(error('E004', `more than ${maxSyntaxErrors} syntax errors: the rest of the file is not checked`, tokenSpan(file, last.token)));
  }
  syntax.sort((a, b) => a.span.start.offset - b.span.start.offset);
  // Recovery resynchronizes token by token, so one mistake can echo along its line: keep the first per line.
  const lines = new Set<number>();
  for (const d of syntax) {
    if (d.code === 'E001') {
      if (lines.has(d.span.start.line)) continue;
      lines.add(d.span.start.line);
    }
    diagnostics.push(d);
  }
  const ast = cstToAst(cst, file, eof);
  diagnostics.push(...checkLayerLines(ast));
  diagnostics.sort((a, b) => a.span.start.offset - b.span.start.offset);
  // Checked on the parser's errors, not the diagnostics: one error per line is shown, but every one counts.
  const harmless = new Set([...slash, ...repaired]);
  const intact = errors.length === 0 && diagnostics.every((d) => d.severity !== 'error' || harmless.has(d));
  return { ast, diagnostics, intact };
}
