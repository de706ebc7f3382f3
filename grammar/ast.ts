// The spec's abstract syntax tree: plain readonly data with source spans, built from the CST.
import type { Span } from './diagnostics.js';

export type Expr =
  | { readonly kind: 'number'; readonly value: number; readonly integer: boolean; readonly text: string; readonly span: Span }
  | { readonly kind: 'name'; readonly name: string; readonly span: Span }
  | { readonly kind: 'neg'; readonly operand: Expr; readonly span: Span }
  | { readonly kind: 'binary'; readonly op: '+' | '-' | '*' | '/'; readonly left: Expr; readonly right: Expr; readonly span: Span };

/** `:ceil()` after a call, as Torch's Lua sets a module's mode (`nn.SpatialMaxPooling(3,3,2,2):ceil()`). */
export interface Method {
  readonly name: string;
  readonly span: Span;
}

/** `conv(3, 96, 11, 11)` or a bare `relu`: a layer or a def, decided later. */
export interface Call {
  readonly kind: 'call';
  readonly name: string;
  readonly nameSpan: Span;
  readonly args: readonly Expr[];
  readonly methods: readonly Method[];
  readonly span: Span;
}

/** `residual { … }`, `branch { … }`: a container of items; which names are blocks is decided later. */
export interface Block {
  readonly kind: 'block';
  readonly name: string;
  readonly nameSpan: Span;
  readonly items: readonly Item[];
  readonly span: Span;
}

export type Item = Call | Block;

export interface Param {
  readonly name: string;
  readonly span: Span;
}

export interface Def {
  readonly name: string;
  readonly nameSpan: Span;
  readonly params: readonly Param[];
  readonly body: readonly Item[];
  readonly span: Span;
}

export type Value =
  | { readonly kind: 'numbers'; readonly values: readonly number[]; readonly integer: readonly boolean[]; readonly span: Span }
  | { readonly kind: 'word'; readonly word: string; readonly span: Span }
  | { readonly kind: 'range'; readonly from: number; readonly to: number; readonly span: Span }
  | { readonly kind: 'dims'; readonly dims: readonly number[]; readonly span: Span };

/** `name value? { settings }?`: the generic shape of train options and transform entries. */
export interface Setting {
  readonly name: string;
  readonly nameSpan: Span;
  readonly value?: Value;
  readonly block?: readonly Setting[];
  readonly span: Span;
}

export interface ModelDecl {
  readonly name: string;
  readonly nameSpan: Span;
  readonly inputs: readonly { readonly dims: readonly number[]; readonly span: Span }[];
  readonly imageSizes: readonly { readonly value: number; readonly span: Span }[];
  readonly transforms: readonly { readonly settings: readonly Setting[]; readonly span: Span }[];
  readonly defs: readonly Def[];
  readonly body: readonly Item[];
  readonly span: Span;
}

export interface TrainDecl {
  readonly settings: readonly Setting[];
  readonly span: Span;
}

export interface SpecFile {
  readonly file: string;
  readonly models: readonly ModelDecl[];
  readonly trains: readonly TrainDecl[];
  readonly span: Span;
}
