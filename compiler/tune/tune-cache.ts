// Where a build finds a GPU's timed tuning by itself (issue #15): `nincc tune` on a GPU files its winners in the
// artifact's tune.json and also under the per-user cache, cacheDir()/tune/<GPU key>/<model hash>.json, which
// `nincc build --target cuda` on a GPU of the same name reads (unless --tuned or --no-tuned says otherwise).
import { join } from 'node:path';
import { cacheDir } from '../backends/compile-cached.js';

/**
 * tune.json's key for a GPU the driver names (cuDeviceGetName): lower case, other characters runs of '-', e.g.
 * "NVIDIA H100 80GB HBM3" → "nvidia-h100-80gb-hbm3". Never one of --predict's names (a100, h100, h200): a timed
 * entry sits beside a predicted one, and two boards of one chip (PCIe, SXM) keep their own.
 */
export const gpuKey = (hardware: string): string => hardware.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'gpu';

/** The cached tune file of a GPU key and a model hash (tune-record.ts modelHash). */
export const tuneCacheFile = (key: string, hash: string): string => join(cacheDir(), 'tune', key, `${hash}.json`);
