// Prints a model the way Torch7's nn.Sequential:__tostring__ does (the seed's printouts are golden).
import type { Layer } from '../ir.js';
import { layerSpecs } from '../front/layers.js';

/** One module's line as Torch7's __tostring__ of that class writes it. */
export function torchModuleString(l: Layer): string {
  const name = layerSpecs[l.kind].torch;
  switch (l.kind) {
    case 'conv': {
      const a = l.attrs;
      let s = `${name}(${a.nIn} -> ${a.nOut}, ${a.kW}x${a.kH}`;
      if (a.dW !== 1 || a.dH !== 1 || a.padW !== 0 || a.padH !== 0) s += `, ${a.dW},${a.dH}`;
      if (a.padW !== 0 || a.padH !== 0) s += `, ${a.padW},${a.padH}`;
      return a.bias ? `${s})` : `${s}) without bias`;
    }
    case 'maxpool': {
      const a = l.attrs;
      return `${name}(${a.kW},${a.kH},${a.dW},${a.dH},${a.padW},${a.padH})`;
    }
    case 'avgpool': {
      // The seed's Torch printed SpatialAveragePooling as (kW,kH,dW,dH); padding, when present, follows.
      const a = l.attrs;
      const pad = a.padW !== 0 || a.padH !== 0 ? `,${a.padW},${a.padH}` : '';
      return `${name}(${a.kW},${a.kH},${a.dW},${a.dH}${pad})`;
    }
    case 'view':
      return `${name}(${l.attrs.sizes.join('x')})`;
    case 'linear': {
      const a = l.attrs;
      return `${name}(${a.nIn} -> ${a.nOut})${a.bias ? '' : ' without bias'}`;
    }
    case 'dropout':
      return `${name}(${l.attrs.p.toFixed(6)})`;
    case 'bn':
    case 'relu':
    case 'logsoftmax':
    case 'softmax':
      return name;
  }
}

export function torchPrint(layers: readonly Layer[]): string {
  const arrows = layers.map((l) => ` -> (${l.index})`).join('');
  const lines = ['nn.Sequential {', `  [input${arrows} -> output]`];
  for (const l of layers) lines.push(`  (${l.index}): ${torchModuleString(l)}`);
  lines.push('}');
  return lines.join('\n');
}
