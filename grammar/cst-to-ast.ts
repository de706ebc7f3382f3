// Builds the plain AST from chevrotain's CST. Tolerates the partial nodes that parser recovery leaves.
import type { CstElement, CstNode, IToken } from 'chevrotain';
import type { Block, Call, Def, Expr, Item, Method, ModelDecl, Param, Setting, SpecFile, TrainDecl, Value } from './ast.js';
import type { Position, Span } from './diagnostics.js';

interface Ctx {
  readonly file: string;
  readonly eof: Position;
}

function isToken(e: CstElement): e is IToken {
  return (e as IToken).image !== undefined;
}

const isReal = (t: IToken) => !t.isInsertedInRecovery && Number.isFinite(t.startOffset);

function tokens(node: CstNode, name: string): IToken[] {
  return ((node.children[name] ?? []) as CstElement[]).filter(isToken).filter(isReal);
}

function nodes(node: CstNode, name: string): CstNode[] {
  return ((node.children[name] ?? []) as CstElement[]).filter((e): e is CstNode => !isToken(e));
}

function tokenStart(t: IToken): Position {
  return { offset: t.startOffset, line: t.startLine ?? 1, column: t.startColumn ?? 1 };
}

function tokenEnd(t: IToken): Position {
  return { offset: (t.endOffset ?? t.startOffset) + 1, line: t.endLine ?? t.startLine ?? 1, column: (t.endColumn ?? t.startColumn ?? 1) + 1 };
}

export function tokenSpan(file: string, t: IToken): Span {
  return { file, start: tokenStart(t), end: tokenEnd(t) };
}

/** The span from a node's first real token to its last; an explicit stack, as a node may hold 100,000 children. */
function nodeSpan(ctx: Ctx, node: CstNode): Span {
  let first: IToken | undefined;
  let last: IToken | undefined;
  const pending: CstNode[] = [node];
  for (let n = pending.pop(); n; n = pending.pop()) {
    for (const list of Object.values(n.children)) {
      for (const e of list as CstElement[]) {
        if (!isToken(e)) pending.push(e);
        else if (isReal(e)) {
          if (!first || e.startOffset < first.startOffset) first = e;
          if (!last || e.startOffset > last.startOffset) last = e;
        }
      }
    }
  }
  if (!first || !last) return { file: ctx.file, start: ctx.eof, end: ctx.eof };
  return { file: ctx.file, start: tokenStart(first), end: tokenEnd(last) };
}

function joinSpans(a: Span, b: Span): Span {
  return { file: a.file, start: a.start, end: b.end };
}

function buildExpr(ctx: Ctx, node: CstNode): Expr {
  // expr and term share a shape: operand (operator operand)*, folded left to right.
  if (node.name === 'expr' || node.name === 'term') {
    const operands = nodes(node, 'operand').map((n) => buildExpr(ctx, n));
    const operators = tokens(node, 'operator').map((t) => t.image as '+' | '-' | '*' | '/');
    if (operands.length === 0) return missingNumber(ctx, node);
    let acc = operands[0];
    for (let i = 1; i < operands.length; i++) {
      const right = operands[i];
      acc = { kind: 'binary', op: operators[i - 1] ?? '+', left: acc, right, span: joinSpans(acc.span, right.span) };
    }
    return acc;
  }
  if (node.name === 'unary') {
    const inner = nodes(node, 'unary')[0] ?? nodes(node, 'atom')[0];
    if (!inner) return missingNumber(ctx, node);
    const operand = buildExpr(ctx, inner);
    const minus = tokens(node, 'Minus')[0];
    return minus ? { kind: 'neg', operand, span: joinSpans(tokenSpan(ctx.file, minus), operand.span) } : operand;
  }
  // atom
  const num = tokens(node, 'Integer')[0] ?? tokens(node, 'Float')[0];
  if (num) return { kind: 'number', value: Number(num.image), integer: num.tokenType.name === 'Integer', text: num.image, span: tokenSpan(ctx.file, num) };
  const id = tokens(node, 'Identifier')[0];
  if (id) return { kind: 'name', name: id.image, span: tokenSpan(ctx.file, id) };
  const inner = nodes(node, 'expr')[0];
  return inner ? { ...buildExpr(ctx, inner), span: nodeSpan(ctx, node) } : missingNumber(ctx, node);
}

/** A placeholder for an operand that recovery dropped; only reached when a syntax error was reported. */
function missingNumber(ctx: Ctx, node: CstNode): Expr {
  return { kind: 'number', value: 0, integer: true, text: '0', span: nodeSpan(ctx, node) };
}

function buildMethod(ctx: Ctx, node: CstNode): Method | undefined {
  const id = tokens(node, 'Identifier')[0];
  return id ? { name: id.image, span: nodeSpan(ctx, node) } : undefined;
}

function buildCall(ctx: Ctx, node: CstNode): Call | undefined {
  const id = tokens(node, 'Identifier')[0];
  if (!id) return undefined;
  const methods = nodes(node, 'method').map((m) => buildMethod(ctx, m)).filter((m): m is Method => m !== undefined);
  // The call's span ends before its methods: a layer's diagnostics underline the call as written before `:ceil()`.
  const callEnd = nodeSpan(ctx, { ...node, children: { ...node.children, method: [] } });
  return { kind: 'call', name: id.image, nameSpan: tokenSpan(ctx.file, id), args: nodes(node, 'expr').map((e) => buildExpr(ctx, e)), methods, span: callEnd };
}

function buildBlock(ctx: Ctx, node: CstNode): Block | undefined {
  const id = tokens(node, 'Identifier')[0];
  if (!id) return undefined;
  return { kind: 'block', name: id.image, nameSpan: tokenSpan(ctx.file, id), items: buildItems(ctx, nodes(node, 'item')), span: nodeSpan(ctx, node) };
}

function buildItem(ctx: Ctx, node: CstNode): Item | undefined {
  const container = nodes(node, 'container')[0];
  if (container) return buildBlock(ctx, container);
  const call = nodes(node, 'call')[0];
  return call ? buildCall(ctx, call) : undefined;
}

function buildItems(ctx: Ctx, list: CstNode[]): Item[] {
  return list.map((n) => buildItem(ctx, n)).filter((c): c is Item => c !== undefined);
}

function buildDef(ctx: Ctx, node: CstNode): Def | undefined {
  const name = tokens(node, 'name')[0];
  if (!name) return undefined;
  const params: Param[] = tokens(node, 'param').map((t) => ({ name: t.image, span: tokenSpan(ctx.file, t) }));
  return { name: name.image, nameSpan: tokenSpan(ctx.file, name), params, body: buildItems(ctx, nodes(node, 'item')), span: nodeSpan(ctx, node) };
}

function buildValue(ctx: Ctx, node: CstNode): Value | undefined {
  const span = nodeSpan(ctx, node);
  const range = nodes(node, 'range')[0];
  if (range) {
    const from = tokens(range, 'from')[0];
    const to = tokens(range, 'to')[0];
    if (!from || !to) return undefined;
    return { kind: 'range', from: Number(from.image), to: Number(to.image), span };
  }
  const numbers = nodes(node, 'number');
  if (numbers.length > 0) {
    const values: number[] = [];
    const integer: boolean[] = [];
    for (const n of numbers) {
      const t = tokens(n, 'Integer')[0] ?? tokens(n, 'Float')[0];
      if (!t) continue;
      const sign = tokens(n, 'Minus').length > 0 ? -1 : 1;
      values.push(sign * Number(t.image));
      integer.push(t.tokenType.name === 'Integer');
    }
    return { kind: 'numbers', values, integer, span };
  }
  const word = tokens(node, 'word')[0];
  if (word) return { kind: 'word', word: word.image, span };
  const dims = tokens(node, 'Dims')[0];
  if (dims) return { kind: 'dims', dims: dims.image.split('x').map(Number), span };
  return undefined;
}

function buildSettings(ctx: Ctx, block: CstNode | undefined): Setting[] {
  if (!block) return [];
  const out: Setting[] = [];
  for (const s of nodes(block, 'setting')) {
    const name = tokens(s, 'name')[0];
    if (!name) continue;
    const valueNode = nodes(s, 'value')[0];
    const value = valueNode ? buildValue(ctx, valueNode) : undefined;
    const inner = nodes(s, 'block')[0];
    out.push({
      name: name.image,
      nameSpan: tokenSpan(ctx.file, name),
      ...(value ? { value } : {}),
      ...(inner ? { block: buildSettings(ctx, inner) } : {}),
      span: nodeSpan(ctx, s),
    });
  }
  return out;
}

function buildModel(ctx: Ctx, node: CstNode): ModelDecl {
  const name = tokens(node, 'Identifier')[0];
  const inputs: { dims: number[]; span: Span }[] = [];
  const imageSizes: { value: number; span: Span }[] = [];
  const transforms: { settings: Setting[]; span: Span }[] = [];
  const defs: Def[] = [];
  const body: Item[] = [];
  for (const item of nodes(node, 'modelItem')) {
    const input = nodes(item, 'inputDecl')[0];
    const imageSize = nodes(item, 'imageSizeDecl')[0];
    const transform = nodes(item, 'transformDecl')[0];
    const def = nodes(item, 'def')[0];
    const entry = nodes(item, 'item')[0];
    if (input) {
      const d = tokens(input, 'Dims')[0];
      if (d) inputs.push({ dims: d.image.split('x').map(Number), span: nodeSpan(ctx, input) });
    } else if (imageSize) {
      const v = tokens(imageSize, 'Integer')[0];
      if (v) imageSizes.push({ value: Number(v.image), span: nodeSpan(ctx, imageSize) });
    } else if (transform) {
      transforms.push({ settings: buildSettings(ctx, nodes(transform, 'block')[0]), span: nodeSpan(ctx, transform) });
    } else if (def) {
      const d = buildDef(ctx, def);
      if (d) defs.push(d);
    } else if (entry) {
      const c = buildItem(ctx, entry);
      if (c) body.push(c);
    }
  }
  const span = nodeSpan(ctx, node);
  return { name: name?.image ?? '', nameSpan: name ? tokenSpan(ctx.file, name) : span, inputs, imageSizes, transforms, defs, body, span };
}

function buildTrain(ctx: Ctx, node: CstNode): TrainDecl {
  return { settings: buildSettings(ctx, nodes(node, 'block')[0]), span: nodeSpan(ctx, node) };
}

export function cstToAst(cst: CstNode, file: string, eof: Position): SpecFile {
  const ctx: Ctx = { file, eof };
  return {
    file,
    models: nodes(cst, 'model').map((m) => buildModel(ctx, m)),
    trains: nodes(cst, 'trainBlock').map((t) => buildTrain(ctx, t)),
    span: { file, start: { offset: 0, line: 1, column: 1 }, end: eof },
  };
}
