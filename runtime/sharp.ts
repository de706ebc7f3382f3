// sharp (libvips), loaded on first use instead of at import: loading it (its native library) took 0.5–1.8 s of
// every `nincc` process on a loaded 2-core machine, most of which decode no image (bench/RESULTS.md "ciT: CI
// time"). Synchronous (its CommonJS build, the same code), so configureSharpForWorkers stays a plain call.
import { createRequire } from 'node:module';

type Sharp = typeof import('sharp').default;
let loaded: Sharp | undefined;

/** The sharp function, required the first time it is asked for. */
export function sharp(): Sharp {
  loaded ??= createRequire(import.meta.url)('sharp') as Sharp;
  return loaded;
}

/** Whether this process has loaded sharp yet (test/sharp-lazy.test.ts). */
export function sharpLoaded(): boolean {
  return loaded !== undefined;
}
