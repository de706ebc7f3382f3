// The front end's one capability check: the network as the back end lowers it today (a chain of the layers of
// LayerKind, pools in floor mode), or an error at the first block or layer that it cannot lower yet (issue #17).
import { error, type Diagnostic } from '../../grammar/diagnostics.js';
import { callSiteNote } from './expand-defs.js';
import type { ShapedLayer, ShapedModel, ShapedNetNode, ShapedNetwork } from '../ir.js';
import { layerSpecs } from './layers.js';

const cannotRun = 'nincc check and nincc inspect describe this model; build, train and infer cannot run it';
const notYet = `is not lowered yet (issue #17): ${cannotRun}`;

/** The node as a layer of the chain the back end lowers, or why it is none. */
function chainLayer(n: ShapedNetNode): ShapedLayer | { why: string } {
  switch (n.kind) {
    case 'residual':
    case 'concat':
    case 'depthconcat':
      return { why: `residual/concat blocks are not lowered yet (issue #17): ${cannotRun}` };
    case 'lrn':
    case 'threshold':
    case 'tanh':
    case 'sigmoid':
    case 'identity':
    case 'zeropad':
      return { why: `${n.kind} (${layerSpecs[n.kind].torch}) ${notYet}` };
    case 'maxpool':
    case 'avgpool':
      return n.attrs.ceil ? { why: `${n.kind}:ceil() (ceil mode) ${notYet}` } : n;
    case 'conv':
    case 'bn':
    case 'relu':
    case 'view':
    case 'linear':
    case 'logsoftmax':
    case 'softmax':
    case 'dropout':
      return n;
  }
}

export function lowerableChain(net: ShapedNetwork): { model: ShapedModel } | { problem: Diagnostic } {
  const layers: ShapedLayer[] = [];
  for (const n of net.nodes) {
    const l = chainLayer(n);
    if ('why' in l) return { problem: error('E090', l.why, n.span, n.callSites.map(callSiteNote)) };
    layers.push(l);
  }
  const { nodes: _, ...header } = net;
  return { model: { ...header, layers } };
}
