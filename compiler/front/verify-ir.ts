// The IR verifier: invariants every pass must keep. A violation is a compiler bug, not a spec error.
import type { Shape, ShapedModel } from '../ir.js';

const validShape = (s: Shape) => s.length >= 1 && s.every((d) => Number.isInteger(d) && d >= 1);

export function verifyShapedModel(m: ShapedModel): string[] {
  const problems: string[] = [];
  if (!validShape(m.input) || m.input.length !== 3) problems.push(`model input ${m.input.join('x')} is not a valid CxHxW`);
  let previous = m.input;
  let params = 0;
  let macs = 0;
  m.layers.forEach((l, i) => {
    const where = `layer ${l.index} (${l.kind})`;
    if (l.index !== i + 1) problems.push(`${where}: index should be ${i + 1}`);
    if (l.input.join('x') !== previous.join('x')) problems.push(`${where}: input ${l.input.join('x')} does not follow the previous output ${previous.join('x')}`);
    if (!validShape(l.output)) problems.push(`${where}: invalid output shape ${l.output.join('x')}`);
    for (const [k, v] of Object.entries(l.attrs)) {
      if (typeof v === 'number' && !Number.isFinite(v)) problems.push(`${where}: attribute ${k} is ${v}`);
    }
    if (l.params < 0 || l.macs < 0) problems.push(`${where}: negative counts`);
    params += l.params;
    macs += l.macs;
    previous = l.output;
  });
  if (m.output.join('x') !== previous.join('x')) problems.push('model output differs from the last layer output');
  if (m.totals.params !== params || m.totals.macs !== macs) problems.push('totals differ from the sum over layers');
  return problems;
}

export class IRVerificationError extends Error {
  constructor(pass: string, problems: readonly string[]) {
    super(`internal error: the IR after pass '${pass}' is invalid:\n  ${problems.join('\n  ')}`);
  }
}
