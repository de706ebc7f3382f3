// The benches refuse a native addon built before its runtime sources changed (bench/addon-fresh.ts): round 17's
// start bench timed such an addon and printed wrong outputs. A fake package root with set modification times.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ADDON_SOURCES, addonStampPath, refuseStaleAddon, staleAddonReason } from '../bench/addon-fresh.js';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});

/** A package root holding `files` (relative path → seconds since the epoch for its mtime). */
function fakeRoot(files: Record<string, number>): string {
  const root = mkdtempSync(join(tmpdir(), 'nincc-addon-fresh-'));
  roots.push(root);
  for (const [rel, seconds] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '');
    utimesSync(path, seconds, seconds);
  }
  return root;
}

const STAMP = 'runtime/build/addon/Release/nincc.node.stamp';

describe('bench/addon-fresh', () => {
  it('passes an addon whose stamp is newer than every source', () => {
    const root = fakeRoot({ 'runtime/core/executor.cc': 1000, 'runtime/include/nincc/abi.h': 1000, 'CMakeLists.txt': 900, [STAMP]: 2000 });
    expect(addonStampPath(root)).toBe(join(root, STAMP));
    expect(staleAddonReason(root)).toBeUndefined();
    expect(() => refuseStaleAddon(root)).not.toThrow();
  });

  it('refuses, naming them, when sources (nested or CMakeLists.txt) changed after the stamp', () => {
    const root = fakeRoot({ 'runtime/core/executor.cc': 1000, 'runtime/core/tests/plan_test.cc': 3000, 'CMakeLists.txt': 2500, [STAMP]: 2000 });
    const why = staleAddonReason(root);
    expect(why).toContain('2 runtime source(s) changed');
    expect(why).toContain('runtime/core/tests/plan_test.cc, CMakeLists.txt'); // newest first
    expect(why).not.toContain('executor.cc');
    expect(() => refuseStaleAddon(root)).toThrow(/stale native addon.*npm run build:native/);
  });

  it('refuses an addon with no stamp (not built, or built before stamps)', () => {
    const root = fakeRoot({ 'runtime/binding/addon.cc': 1000, 'runtime/build/addon/Release/nincc.node': 2000 });
    expect(staleAddonReason(root)).toMatch(/no build stamp/);
  });

  it('is run by bench:cpu after build:native, whose every build touches the stamp', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['bench:cpu']).toMatch(/^npm run build:native && /);
    const cmake = readFileSync(new URL('../CMakeLists.txt', import.meta.url), 'utf8');
    expect(cmake).toMatch(/add_custom_target\(nincc_addon_stamp ALL\s+COMMAND \$\{CMAKE_COMMAND\} -E touch \$<TARGET_FILE_DIR:nincc_addon>\/nincc\.node\.stamp/);
  });

  // Only runtime/include's headers the addon includes are sources (the kernel headers are not): a header the
  // addon starts including must join the list, or the check would pass an addon built before that header changed.
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const build = join(root, 'runtime', 'build', 'addon');
  const deps = existsSync(join(build, 'build.ninja')) ? spawnSync('ninja', ['-C', build, '-t', 'deps'], { encoding: 'utf8' }) : undefined;
  it.skipIf(!deps || deps.status !== 0)('lists every runtime/include header the addon build depends on (ninja -t deps; skipped without a ninja build)', () => {
    const included = new Set([...deps!.stdout.matchAll(/^\s+(\S+)$/gm)].map((m) => relative(root, m[1])).filter((p) => p.startsWith('runtime/include/')));
    expect(included.size).toBeGreaterThan(0);
    for (const header of included) expect(ADDON_SOURCES.some((s) => header === s || header.startsWith(`${s}/`)), header).toBe(true);
  });
});
