// The kernel-library cache shares one compile between builds whose kernels are the same and whose source hash is
// not, or whose comments differ (compile-cached.ts CachedCompile.identity): two max batches of one spec, and the
// same layers under another name, compile the cpu library once, each
// copy returns its own plan's hash (the runtime checks it on load), and the delivered library is the bytes g++ makes
// of the artifact's own kernels.cpu.cc with the artifact's command, once both lose their symbol table (it names the
// file compiled: here the cache's source, before this change the first artifact's) and their build-id note.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compilerCommand } from '../compiler/backends/cpu/toolchain.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomImages, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { DROPOUT_MLP } from './reference/specs.js';

const root = mkdtempSync(join(tmpdir(), 'nincc-cache-identity-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The library's bytes without its symbol table and build-id note (a hash of the whole file), or undefined without objcopy. */
function stripped(library: string): Buffer | undefined {
  const out = `${library}.stripped`;
  const r = spawnSync('objcopy', ['--strip-all', '--remove-section', '.note.gnu.build-id', library, out]);
  return r.error || r.status !== 0 ? undefined : readFileSync(out);
}

describe('the kernel-library cache across source hashes', () => {
  const model = compileSpec(DROPOUT_MLP, 'dropout_mlp.model').model!;

  it('two max batches of one spec compile the cpu library once; each returns its own hash and runs; the bytes are g++\'s of the source', async () => {
    const build = (maxBatch: number, spec = DROPOUT_MLP, file = 'dropout_mlp.model') => {
      const logged: string[] = [];
      const shaped = compileSpec(spec, file).model!;
      const b = withEnv({ NINCC_CACHE_DIR: join(root, 'cache') }, () => buildArtifact(shaped, spec, { outDir: join(root, `${file}-${maxBatch}`), target: 'cpu', maxBatch, log: (l) => logged.push(l) }));
      return { ...b, logged };
    };
    const two = build(2), three = build(3);
    expect(two.plan.sourceHash).not.toBe(three.plan.sourceHash);
    expect(readFileSync(join(two.dir, 'kernels.cpu.cc'), 'utf8').replaceAll(two.plan.sourceHash, three.plan.sourceHash)).toBe(readFileSync(join(three.dir, 'kernels.cpu.cc'), 'utf8'));
    expect(two.logged).toContain('kernel library: compiled');
    expect(three.logged).toContain('kernel library: cache hit');
    // The same layers under another model and file name: only the generated comments differ, and the cache still has it.
    const renamed = build(2, DROPOUT_MLP.replace('model dropout_mlp', 'model renamed_mlp'), 'renamed.model');
    const source = readFileSync(join(renamed.dir, 'kernels.cpu.cc'), 'utf8');
    expect(source).toContain('renamed.model');
    expect(source.replaceAll(renamed.plan.sourceHash, two.plan.sourceHash)).not.toBe(readFileSync(join(two.dir, 'kernels.cpu.cc'), 'utf8'));
    expect(renamed.logged).toContain('kernel library: cache hit');

    // load checks the library's nincc_source_hash against plan.json's: a copy still holding the placeholder, or the
    // other build's hash, is refused.
    const images = randomImages(model, 2, rng(5));
    const outputs: Float32Array[] = [];
    for (const dir of [two.dir, three.dir, renamed.dir]) {
      const m = await load(dir, { device: 'cpu', seed: 3 });
      try {
        outputs.push(await m.infer(images));
      } finally {
        m.dispose();
      }
    }
    expect(outputs[1]).toEqual(outputs[0]);
    expect(outputs[2]).toEqual(outputs[0]);

    const direct = join(root, 'direct.so');
    const command = compilerCommand(join(three.dir, 'kernels.cpu.cc'), direct, three.plan.cpuFeatures);
    const g = spawnSync(command[0]!, command.slice(1), { encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    const [delivered, compiled] = [stripped(join(three.dir, 'kernels.cpu.so')), stripped(direct)];
    if (!delivered || !compiled) {
      console.log('skipped the byte comparison: no objcopy here to strip the symbol tables and build-id notes');
      return;
    }
    expect(delivered.equals(compiled)).toBe(true);
  }, 300_000);
});
