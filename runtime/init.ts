// Parameter initialisation by Torch7's rules from a seed, computed here so every device gets the same bits.
import type { NativeTensorInfo } from './native.js';

/** A 32-bit hash of a string (FNV-1a), to give each tensor its own random stream. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** mulberry32: small, fast and good enough for weight init; uniform in [0, 1). */
export function uniformStream(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Values for one tensor. The stream depends on (seed, tensor name) only, so adding a layer
 * elsewhere does not change this tensor's initial values.
 */
export function initialValues(t: Pick<NativeTensorInfo, 'name' | 'size' | 'init'>, seed: number): Float32Array {
  const out = new Float32Array(t.size);
  const next = uniformStream((Math.imul(seed >>> 0, 0x9e3779b1) ^ hashName(t.name)) >>> 0);
  switch (t.init.kind) {
    case 'uniform': {
      const b = t.init.bound ?? 0;
      for (let i = 0; i < out.length; i++) out[i] = (next() * 2 - 1) * b;
      break;
    }
    case 'uniform01':
      for (let i = 0; i < out.length; i++) out[i] = next();
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'zeros':
      break;
  }
  return out;
}
