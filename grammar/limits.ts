// The front end's cost limits, each with its own diagnostic (E004): far above any real spec, they stop a
// hostile or generated file before a later pass spends minutes or its stack on it (docs/diagnostics.md).
import type { IToken } from 'chevrotain';
import type { SpecFile } from './ast.js';
import { tokenSpan } from './cst-to-ast.js';
import { error, type Diagnostic } from './diagnostics.js';
import { Comma, Def, Dims, Identifier, Integer, LCurly, LParen, Minus, Plus, RCurly, RParen, Slash, Star } from './tokens.js';

export const limits = {
  /** A spec longer than this is refused before it is lexed (NIN's spec is about 1,000 characters). */
  sourceCharacters: 1 << 20,
  /** Arguments of one call, parameters of one def. */
  arguments: 64,
  /** Operators in one argument, nested parentheses included: later passes walk an expression recursively. */
  operators: 256,
  /** Layer and def-call lines in one model body; expanding defs has its own limit (E015). */
  layerLines: 100_000,
} as const;

const operatorTokens = new Set([Plus, Minus, Star, Slash]);
const count = (n: number) => n.toLocaleString('en-US');

export function sourceTooLong(length: number): string | undefined {
  return length > limits.sourceCharacters ? `the spec is ${count(length)} characters long, more than the limit of ${count(limits.sourceCharacters)}` : undefined;
}

interface CallFrame {
  readonly isDef: boolean;
  commas: number;
  operators: number;
  /** '(' inside the current argument not yet closed. */
  parens: number;
  reported: boolean;
}

/** Too many arguments in a call or operators in an argument, found on the tokens (so also in a file with syntax errors). */
export function checkTokenLimits(file: string, tokens: readonly IToken[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const calls: CallFrame[] = [];
  tokens.forEach((t, i) => {
    const top = calls[calls.length - 1];
    if (t.tokenType === LParen) {
      if (tokens[i - 1]?.tokenType === Identifier) calls.push({ isDef: tokens[i - 2]?.tokenType === Def, commas: 0, operators: 0, parens: 0, reported: false });
      else if (top) top.parens++;
    } else if (t.tokenType === RParen) {
      if (top && top.parens > 0) top.parens--;
      else calls.pop();
    } else if (t.tokenType === LCurly || t.tokenType === RCurly) {
      calls.length = 0; // a block boundary: whatever call was open is a syntax error reported elsewhere
    } else if (top && !top.reported && t.tokenType === Comma && top.parens === 0) {
      top.commas++;
      top.operators = 0;
      if (top.commas === limits.arguments) {
        top.reported = true;
        const what = top.isDef ? `a def with more than ${limits.arguments} parameters` : `a call with more than ${limits.arguments} arguments`;
        out.push(error('E004', what, tokenSpan(file, tokens[i + 1] ?? t)));
      }
    } else if (top && !top.reported && operatorTokens.has(t.tokenType)) {
      top.operators++;
      if (top.operators > limits.operators) {
        top.reported = true;
        out.push(error('E004', `an argument with more than ${limits.operators} operators`, tokenSpan(file, t)));
      }
    }
  });
  return out;
}

/** Integers past 2^53 would silently become the nearest double: refuse them where they are written. */
export function checkIntegerLiterals(file: string, tokens: readonly IToken[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const t of tokens) {
    if (t.tokenType !== Integer && t.tokenType !== Dims) continue;
    const inexact = t.image.split('x').find((digits) => !Number.isSafeInteger(Number(digits)));
    if (inexact !== undefined) out.push(error('E004', `the integer ${inexact} is larger than 2^53 and cannot be held exactly`, tokenSpan(file, t)));
  }
  return out;
}

export function checkLayerLines(ast: SpecFile): Diagnostic[] {
  return ast.models
    .filter((m) => m.body.length > limits.layerLines)
    .map((m) => error('E004', `model ${m.name} has ${count(m.body.length)} layer lines, more than the limit of ${count(limits.layerLines)}`, m.body[limits.layerLines].nameSpan));
}
