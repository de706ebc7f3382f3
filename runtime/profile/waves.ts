// A launch's grid in blocks and the waves it runs in on a GPU: one definition for the time model (time-model.ts)
// and the compiler's weight-gradient split chooser (compiler/lower/wgrad-splits-waves.ts).

/** Blocks of one launch's grid (x·y·z), or undefined where the counters carry no grid. */
export function gridBlocks(launch: { readonly grid?: readonly number[] }): number | undefined {
  return launch.grid && launch.grid.length === 3 ? launch.grid[0] * launch.grid[1] * launch.grid[2] : undefined;
}

/** Waves of `blocks` equal blocks at `residentBlocksPerSm` (at least 1) on `sms` SMs: ⌈B / (R·S)⌉. */
export function wavesOf(blocks: number, sms: number, residentBlocksPerSm: number): number {
  return Math.ceil(blocks / (sms * Math.max(1, residentBlocksPerSm)));
}
