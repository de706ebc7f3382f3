// The spec grammar as a chevrotain CstParser: rules only, no semantics (those live in compiler/).
import type { CstNode, IToken, TokenType } from 'chevrotain';
import { CstParser } from './chevrotain.js';
import { closest } from './near-miss.js';
import * as T from './tokens.js';

/*
  spec        := (model | trainBlock)*
  model       := 'model' Identifier '{' modelItem* '}'
  modelItem   := 'input' Dims | 'imageSize' Integer | 'transform' block | def | item
  def         := 'def' Identifier '(' (Identifier (',' Identifier)*)? ')' '{' item* '}'
  item        := container | call
  container   := Identifier '{' item* '}'          e.g. `residual { branch { … } branch { identity } }`
  call        := Identifier ('(' (expr (',' expr)*)? ')')? method*
  method      := ':' Identifier ('(' ')')?          e.g. `maxpool(3, 3, 2, 2):ceil()`, as Torch's Lua writes it
  expr        := term (('+' | '-') term)*
  term        := unary (('*' | '/') unary)*
  unary       := '-' unary | atom
  atom        := Integer | Float | Identifier | '(' expr ')'
  trainBlock  := 'train' block
  block       := '{' setting* '}'
  setting     := Identifier value? block?          e.g. `batch 128`, `optimizer sgd { … }`, `regime { … }`
  value       := number+ | Identifier | Integer '..' Integer | Dims
  number      := '-'? (Integer | Float)
*/
// Recovery re-enters a repetition once per error it resyncs past (chevrotain recurses to do it), so a file of
// thousands of bad lines overflowed the stack. Past this many errors the item loops stop, the rest of the
// file is skipped, and parse.ts says so.
export const maxSyntaxErrors = 100;

export class SpecParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  private underErrorLimit = () => this.errors.length < maxSyntaxErrors;

  public spec = this.RULE('spec', () => {
    this.MANY({ GATE: this.underErrorLimit, DEF: () => this.OR([{ ALT: () => this.SUBRULE(this.model) }, { ALT: () => this.SUBRULE(this.trainBlock) }]) });
  });

  private model = this.RULE('model', () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LCurly);
    this.MANY({ GATE: this.underErrorLimit, DEF: () => this.SUBRULE(this.modelItem) });
    this.CONSUME(T.RCurly);
  });

  private modelItem = this.RULE('modelItem', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.inputDecl) },
      { ALT: () => this.SUBRULE(this.imageSizeDecl) },
      { ALT: () => this.SUBRULE(this.transformDecl) },
      { ALT: () => this.SUBRULE(this.def) },
      { ALT: () => this.SUBRULE(this.item) },
    ]);
  });

  private inputDecl = this.RULE('inputDecl', () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Dims);
  });

  private imageSizeDecl = this.RULE('imageSizeDecl', () => {
    this.CONSUME(T.ImageSize);
    this.CONSUME(T.Integer);
  });

  private transformDecl = this.RULE('transformDecl', () => {
    this.CONSUME(T.Transform);
    this.SUBRULE(this.block);
  });

  private def = this.RULE('def', () => {
    this.CONSUME(T.Def);
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME1(T.Identifier, { LABEL: 'param' }) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.LCurly);
    this.MANY({ GATE: this.underErrorLimit, DEF: () => this.SUBRULE(this.item) });
    this.CONSUME(T.RCurly);
  });

  // `trnasform {` is a misspelled transform, which parse.ts names and repairs, not a block.
  private opensBlock = () => this.LA(2).tokenType === T.LCurly && closest(this.LA(1).image, ['transform']) === undefined;

  private item = this.RULE('item', () => {
    this.OR([
      { GATE: this.opensBlock, ALT: () => this.SUBRULE(this.container) },
      { ALT: () => this.SUBRULE(this.call) },
    ]);
  });

  private container = this.RULE('container', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LCurly);
    this.MANY({ GATE: this.underErrorLimit, DEF: () => this.SUBRULE(this.item) });
    this.CONSUME(T.RCurly);
  });

  private call = this.RULE('call', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.expr) });
      this.CONSUME(T.RParen);
    });
    this.MANY(() => this.SUBRULE(this.method));
  });

  private method = this.RULE('method', () => {
    this.CONSUME(T.Colon);
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.CONSUME(T.RParen);
    });
  });

  private expr = this.RULE('expr', () => {
    this.SUBRULE(this.term, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Plus, { LABEL: 'operator' }) }, { ALT: () => this.CONSUME(T.Minus, { LABEL: 'operator' }) }]);
      this.SUBRULE1(this.term, { LABEL: 'operand' });
    });
  });

  private term = this.RULE('term', () => {
    this.SUBRULE(this.unary, { LABEL: 'operand' });
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Star, { LABEL: 'operator' }) }, { ALT: () => this.CONSUME(T.Slash, { LABEL: 'operator' }) }]);
      this.SUBRULE1(this.unary, { LABEL: 'operand' });
    });
  });

  private unary = this.RULE('unary', () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Minus);
          this.SUBRULE(this.unary);
        },
      },
      { ALT: () => this.SUBRULE(this.atom) },
    ]);
  });

  private atom = this.RULE('atom', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Integer) },
      { ALT: () => this.CONSUME(T.Float) },
      { ALT: () => this.CONSUME(T.Identifier) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expr);
          this.CONSUME(T.RParen);
        },
      },
    ]);
  });

  private trainBlock = this.RULE('trainBlock', () => {
    this.CONSUME(T.Train);
    this.SUBRULE(this.block);
  });

  private block = this.RULE('block', () => {
    this.CONSUME(T.LCurly);
    this.MANY({ GATE: this.underErrorLimit, DEF: () => this.SUBRULE(this.setting) });
    this.CONSUME(T.RCurly);
  });

  private setting = this.RULE('setting', () => {
    this.CONSUME(T.Identifier, { LABEL: 'name' });
    this.OPTION(() => this.SUBRULE(this.value));
    this.OPTION1(() => this.SUBRULE(this.block));
  });

  private value = this.RULE('value', () => {
    this.OR([
      { GATE: () => this.LA(2).tokenType === T.DotDot, ALT: () => this.SUBRULE(this.range) },
      { ALT: () => this.AT_LEAST_ONE(() => this.SUBRULE(this.number)) },
      { ALT: () => this.CONSUME(T.Identifier, { LABEL: 'word' }) },
      { ALT: () => this.CONSUME(T.Dims) },
    ]);
  });

  private range = this.RULE('range', () => {
    this.CONSUME(T.Integer, { LABEL: 'from' });
    this.CONSUME(T.DotDot);
    this.CONSUME1(T.Integer, { LABEL: 'to' });
  });

  private number = this.RULE('number', () => {
    this.OPTION(() => this.CONSUME(T.Minus));
    this.OR([{ ALT: () => this.CONSUME(T.Integer) }, { ALT: () => this.CONSUME(T.Float) }]);
  });
}

export type { CstNode, IToken, TokenType };
