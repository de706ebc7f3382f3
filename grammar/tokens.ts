// The spec language's tokens and the chevrotain lexer built from them. No semantics here.
import type { TokenType } from 'chevrotain';
import { createToken, Lexer } from './chevrotain.js';

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
// `# …` and, as in Lua (whose Torch7 scripts these specs mirror), `-- …` run to the end of the line.
export const Comment = createToken({ name: 'Comment', pattern: /(?:#|--)[^\n]*/, group: Lexer.SKIPPED });
// `// …` is not a comment, but a user from C or JS writes it: lexed aside so parse.ts reports it once, with a hint,
// instead of the parser stumbling over every '/' of every such line.
export const SlashComment = createToken({ name: 'SlashComment', pattern: /\/\/[^\n]*/, group: 'slashComments' });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][A-Za-z0-9_]*/ });
function keyword(name: string, word: string): TokenType {
  return createToken({ name, pattern: new RegExp(word), longer_alt: Identifier, label: `'${word}'` });
}
export const Model = keyword('Model', 'model');
export const Def = keyword('Def', 'def');
export const Train = keyword('Train', 'train');
export const Input = keyword('Input', 'input');
export const ImageSize = keyword('ImageSize', 'imageSize');
export const Transform = keyword('Transform', 'transform');

// `3x224x224`: must come before Integer so the digits are not split from the `x`.
export const Dims = createToken({ name: 'Dims', pattern: /\d+(?:x\d+)+/, label: 'dimensions like 3x224x224' });
// A float needs digits after the dot, so `1..9` lexes as Integer DotDot Integer.
export const Float = createToken({
  name: 'Float',
  pattern: /(?:\d+\.\d+(?:[eE][+-]?\d+)?)|(?:\d+[eE][+-]?\d+)|(?:\.\d+(?:[eE][+-]?\d+)?)/,
  label: 'a number',
});
export const Integer = createToken({ name: 'Integer', pattern: /\d+/, label: 'an integer' });
export const DotDot = createToken({ name: 'DotDot', pattern: /\.\./, label: "'..'" });

export const LCurly = createToken({ name: 'LCurly', pattern: /{/, label: "'{'" });
export const RCurly = createToken({ name: 'RCurly', pattern: /}/, label: "'}'" });
export const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const Colon = createToken({ name: 'Colon', pattern: /:/, label: "':'" });
export const Plus = createToken({ name: 'Plus', pattern: /\+/, label: "'+'" });
export const Minus = createToken({ name: 'Minus', pattern: /-/, label: "'-'" });
export const Star = createToken({ name: 'Star', pattern: /\*/, label: "'*'" });
export const Slash = createToken({ name: 'Slash', pattern: /\//, label: "'/'" });

export const allTokens: TokenType[] = [
  WhiteSpace, Comment, SlashComment,
  Model, Def, Train, Input, ImageSize, Transform,
  Identifier,
  Dims, Float, Integer, DotDot,
  LCurly, RCurly, LParen, RParen, Comma, Colon, Plus, Minus, Star, Slash,
];

// Only '\n' ends a line, as in diagnostics' line/column (positionAt) and their rendering: chevrotain's
// default would also count a lone '\r' and put every later token on a line the user does not see.
// The pattern must be global: chevrotain scans it with lastIndex (a non-global one never ends).
export const specLexer = new Lexer(allTokens, {
  positionTracking: 'full',
  ensureOptimizations: false,
  lineTerminatorsPattern: /\n/g,
  lineTerminatorCharacters: ['\n'],
});
