// The IR verifier: invariants every pass must keep. A violation is a compiler bug, not a spec error.
import { isBlock, type Shape, type ShapedModel, type ShapedNetNode, type ShapedNetwork } from '../ir.js';

const validShape = (s: Shape) => s.length >= 1 && s.every((d) => Number.isInteger(d) && d >= 1);

export function verifyShapedModel(m: ShapedModel): string[] {
  const problems: string[] = [];
  if (!validShape(m.input) || m.input.length !== 3) problems.push(`model input ${m.input.join('x')} is not a valid CxHxW`);
  let params = 0;
  let macs = 0;
  const shown = (s: Shape) => s.join('x');
  m.layers.forEach((l, i) => {
    const where = `layer ${l.index} (${l.kind})`;
    if (l.index !== i + 1) problems.push(`${where}: index should be ${i + 1}`);
    // What it reads: the layer before it, or the earlier layers (−1: the model's input) its `from` names.
    const from = l.from ?? [i - 1];
    if (from.some((p) => !Number.isInteger(p) || p < -1 || p >= i)) return void problems.push(`${where}: reads ${from.join(', ')}, not all earlier layers`);
    const inputs = from.map((p) => (p < 0 ? m.input : m.layers[p].output));
    const merge = l.kind === 'add' || l.kind === 'concat';
    if (!merge && inputs.length !== 1) problems.push(`${where}: reads ${inputs.length} values`);
    if (merge && inputs.length < 2) problems.push(`${where}: merges ${inputs.length} value`);
    if (shown(l.input) !== shown(inputs[0])) problems.push(`${where}: input ${shown(l.input)} does not follow the output ${shown(inputs[0])} it reads`);
    if (l.kind === 'add' && inputs.some((s) => shown(s) !== shown(l.output))) problems.push(`${where}: adds ${inputs.map(shown).join(' + ')} into ${shown(l.output)}`);
    if (l.kind === 'concat') {
      const joined = [inputs.reduce((c, s) => c + s[0], 0), ...inputs[0].slice(1)];
      if (inputs.some((s) => shown(s.slice(1)) !== shown(l.output.slice(1))) || shown(joined) !== shown(l.output)) problems.push(`${where}: joins ${inputs.map(shown).join(', ')} into ${shown(l.output)}`);
    }
    if (!validShape(l.output)) problems.push(`${where}: invalid output shape ${l.output.join('x')}`);
    for (const [k, v] of Object.entries(l.attrs)) {
      if (typeof v === 'number' && !Number.isFinite(v)) problems.push(`${where}: attribute ${k} is ${v}`);
    }
    if (l.params < 0 || l.macs < 0) problems.push(`${where}: negative counts`);
    params += l.params;
    macs += l.macs;
  });
  if (shown(m.output) !== shown(m.layers[m.layers.length - 1]?.output ?? m.input)) problems.push('model output differs from the last layer output');
  if (m.totals.params !== params || m.totals.macs !== macs) problems.push('totals differ from the sum over layers');
  return problems;
}

/** A node list (the model's or a branch's): indices in Torch's order, shapes chained, a block's counts its branches' sums. */
function verifyList(nodes: readonly ShapedNetNode[], input: Shape, where: string, problems: string[]): Shape {
  let previous = input;
  let index = 1;
  for (const n of nodes) {
    const at = `${where}node ${n.index} (${n.kind})`;
    if (n.index !== index) problems.push(`${at}: index should be ${index}`);
    index += n.kind === 'residual' ? 2 : 1;
    if (n.input.join('x') !== previous.join('x')) problems.push(`${at}: input ${n.input.join('x')} does not follow the previous output ${previous.join('x')}`);
    if (!validShape(n.output)) problems.push(`${at}: invalid output shape ${n.output.join('x')}`);
    if (n.params < 0 || n.macs < 0) problems.push(`${at}: negative counts`);
    if (isBlock(n)) {
      let params = 0;
      let macs = 0;
      n.branches.forEach((b, i) => {
        verifyList(b.nodes, n.input, `${at} branch ${i + 1}: `, problems);
        for (const m of b.nodes) (params += m.params), (macs += m.macs);
      });
      if (params !== n.params || macs !== n.macs) problems.push(`${at}: counts differ from the sum over its branches`);
    } else {
      for (const [k, v] of Object.entries(n.attrs)) if (typeof v === 'number' && !Number.isFinite(v)) problems.push(`${at}: attribute ${k} is ${v}`);
    }
    previous = n.output;
  }
  return previous;
}

export function verifyNetwork(m: ShapedNetwork): string[] {
  const problems: string[] = [];
  if (!validShape(m.input) || m.input.length !== 3) problems.push(`model input ${m.input.join('x')} is not a valid CxHxW`);
  const output = verifyList(m.nodes, m.input, '', problems);
  if (m.output.join('x') !== output.join('x')) problems.push('model output differs from the last node output');
  const params = m.nodes.reduce((t, n) => t + n.params, 0);
  const macs = m.nodes.reduce((t, n) => t + n.macs, 0);
  if (m.totals.params !== params || m.totals.macs !== macs) problems.push('totals differ from the sum over nodes');
  return problems;
}

export class IRVerificationError extends Error {
  constructor(pass: string, problems: readonly string[]) {
    super(`internal error: the IR after pass '${pass}' is invalid:\n  ${problems.join('\n  ')}`);
  }
}
