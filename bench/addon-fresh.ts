// Refuses a bench on a stale native addon: one built before the runtime sources it is built from last
// changed. Round 17's start bench timed such an addon (built before the executor learned splitLocal) and
// printed wrong outputs; `tsc` alone does not rebuild it. Every `npm run build:native` that succeeds
// touches runtime/build/addon/Release/nincc.node.stamp (CMakeLists.txt's nincc_addon_stamp, which runs on
// every build, a no-op compile included), so the stamp is at least as new as every source the build saw.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { packageRoot } from '../compiler/package-root.js';

/**
 * What the addon is built from, relative to the package root: directories (searched whole) and files. Of
 * runtime/include only the headers the addon includes (test/bench-addon-fresh.test.ts checks them against
 * ninja's record): the kernel headers under it go into each artifact's library, and an A/B of a kernel
 * change edits them without touching the addon.
 */
export const ADDON_SOURCES = ['runtime/core', 'runtime/binding', 'runtime/include/nincc/abi.h', 'runtime/include/nincc/device/emu_abi.h', 'CMakeLists.txt'] as const;

/** The stamp under `root`: written by every successful `npm run build:native`. */
export function addonStampPath(root: string): string {
  return join(root, 'runtime', 'build', 'addon', 'Release', 'nincc.node.stamp');
}

/** Each file under `path` (itself when a file), with its modification time. */
function filesUnder(path: string): { path: string; mtimeMs: number }[] {
  if (!existsSync(path)) return [];
  const st = statSync(path);
  if (!st.isDirectory()) return [{ path, mtimeMs: st.mtimeMs }];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/**
 * Why the addon under `root` may not be benched, or undefined when its stamp is at least as new as every
 * source: no stamp (never built, or built before stamps), or the sources modified after it (newest first, 5 named).
 */
export function staleAddonReason(root: string = packageRoot()): string | undefined {
  const stamp = addonStampPath(root);
  if (!existsSync(stamp)) return `no build stamp ${relative(root, stamp)} (the addon is not built, or was built before stamps)`;
  const built = statSync(stamp).mtimeMs;
  const newer = ADDON_SOURCES.flatMap((s) => filesUnder(join(root, s)))
    .filter((f) => f.mtimeMs > built)
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  if (newer.length === 0) return undefined;
  const named = newer.slice(0, 5).map((f) => relative(root, f.path)).join(', ');
  return `${newer.length} runtime source(s) changed after the addon's last build: ${named}${newer.length > 5 ? ', …' : ''}`;
}

/** Throws, saying to run `npm run build:native`, when the package's addon is stale (staleAddonReason). */
export function refuseStaleAddon(root: string = packageRoot()): void {
  const why = staleAddonReason(root);
  if (why) throw new Error(`refusing to bench a stale native addon: ${why}; run \`npm run build:native\` first`);
}
