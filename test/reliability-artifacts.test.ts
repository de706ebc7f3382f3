// Bad artifacts and weights fail with clear errors; loading and disposing a model repeatedly leaks nothing.
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { load } from '../runtime/model.js';
import { loadNative } from '../runtime/native.js';
import { buildSpec, type Built } from './reference/artifacts.js';

const specA = 'model a { input 1x4x4 conv(1, 2, 3, 3, 1, 1, 1, 1) bn(2) relu view(-1) linear(32, 3) logsoftmax }\n';
const specB = 'model b { input 1x4x4 conv(1, 3, 3, 3, 1, 1, 1, 1) relu view(-1) linear(48, 3) logsoftmax }\n';

describe('reliability: artifacts and weights', () => {
  let a: Built;
  let b: Built;
  const work = mkdtempSync(join(tmpdir(), 'nincc-reliability-'));
  beforeAll(() => {
    a = buildSpec('rel_a', specA, 2);
    b = buildSpec('rel_b', specB, 2);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const copyArtifact = (name: string) => {
    const dir = join(work, name);
    cpSync(a.dir, dir, { recursive: true });
    return dir;
  };

  it('an artifact from another plan format version is refused with the version found', async () => {
    const dir = copyArtifact('v3');
    const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8'));
    writeFileSync(join(dir, 'plan.json'), JSON.stringify({ ...plan, version: 3 }));
    await expect(load(dir)).rejects.toThrow(/plan format version 3 is not supported by this runtime \(expects 2\); rebuild whichever is older/);
  });

  it('a missing or foreign kernel library is named in the error', async () => {
    const missing = copyArtifact('nolib');
    rmSync(join(missing, 'kernels.cpu.so'));
    await expect(load(missing)).rejects.toThrow(/kernels\.cpu\.so/);
    const foreign = copyArtifact('foreign');
    copyFileSync(join(b.dir, 'kernels.cpu.so'), join(foreign, 'kernels.cpu.so'));
    // Another model's library fails plan.json's record of the library's SHA-256, before it is opened.
    await expect(load(foreign)).rejects.toThrow(/kernels\.cpu\.so: the cpu kernel library's SHA-256 is [0-9a-f]{64} but .*plan\.json records/);
  });

  it("weights of another model list the tensors that differ", async () => {
    const mb = await load(b.dir);
    const weights = join(work, 'b.safetensors');
    await mb.save(weights);
    mb.dispose();
    const ma = await load(a.dir);
    const err = await ma.loadWeights(weights).then(() => undefined, (e: Error) => e.message);
    ma.dispose();
    expect(err).toContain(`${weights} does not fit model a:`);
    expect(err).toContain('conv1.weight is 3×1×3×3, expected 2×1×3×3');
    expect(err).toContain('missing bn2.weight (2)');
    expect(err).toContain('tensors this model does not have: linear4.bias, linear4.weight');
    await expect(load(a.dir, { weights: join(work, 'nope.safetensors') })).rejects.toThrow('no such file');
  });

  it('1,000 load/infer/dispose cycles leave the resident memory flat', async () => {
    const x = new Float32Array(2 * 16).fill(0.25);
    const cycle = async () => {
      const m = await load(a.dir);
      await m.infer(x);
      m.dispose();
    };
    for (let i = 0; i < 500; i++) await cycle(); // warm-up: allocator pools, JIT
    global.gc?.();
    const before = process.memoryUsage().rss;
    const held = loadNative().hostMemory();
    for (let i = 0; i < 1000; i++) await cycle();
    global.gc?.();
    const grown = (process.memoryUsage().rss - before) / 2 ** 20;
    console.log(`RSS growth over 1,000 load/infer/dispose cycles: ${grown.toFixed(1)} MiB`);
    expect(grown).toBeLessThan(8);
    // The device frees what is left when a model's device goes, so RSS alone cannot see an arena that
    // never releases its spaces: the device's own count of what it had to reclaim can.
    const after = loadNative().hostMemory();
    expect(after.reclaimedAtTeardown - held.reclaimedAtTeardown, 'allocations an arena never released').toBe(0);
    expect(after.liveAllocations).toBe(held.liveAllocations);
    expect(after.liveBytes).toBe(held.liveBytes);
  });

  it('an open model holds its spaces on the device and dispose releases every one', async () => {
    const held = loadNative().hostMemory();
    const m = await load(a.dir);
    const open = loadNative().hostMemory();
    // one allocation per plan space (param, grad, momentum, state, fixed, act), at least the parameters' bytes
    expect(open.liveAllocations - held.liveAllocations).toBe(6);
    expect(open.liveBytes - held.liveBytes).toBeGreaterThanOrEqual(4 * m.info.spaces.param);
    await m.dispose();
    const after = loadNative().hostMemory();
    expect(after.liveAllocations).toBe(held.liveAllocations);
    expect(after.reclaimedAtTeardown).toBe(held.reclaimedAtTeardown);
  });

  it("a disposed model's arena goes back to the system (seen in RSS, no LeakSanitizer needed)", async () => {
    // An arena of a few MiB: allocations that size are their own zero-filled mappings, so each one a
    // disposed model kept would add its whole size to RSS, and each one freed takes it back at once.
    const big = buildSpec('rel_big', 'model big { input 1x32x32 conv(1, 64, 3, 3, 1, 1, 1, 1) relu view(-1) linear(65536, 2) logsoftmax }\n', 4);
    const x = new Float32Array(32 * 32).fill(0.5);
    const cycle = async () => {
      const m = await load(big.dir);
      await m.infer(x);
      const s = m.info.spaces;
      const bytes = 4 * Object.entries(s).reduce((sum, [space, n]) => sum + n * (space === 'act' ? m.maxBatch : 1), 0);
      m.dispose();
      return bytes;
    };
    for (let i = 0; i < 20; i++) await cycle(); // warm-up: the allocator settles its heap and mmap threshold
    const before = process.memoryUsage().rss;
    const cycles = 40;
    let arena = 0;
    for (let i = 0; i < cycles; i++) arena = await cycle();
    const grown = process.memoryUsage().rss - before;
    console.log(`RSS growth over ${cycles} cycles of a ${(arena / 2 ** 20).toFixed(1)} MiB arena: ${(grown / 2 ** 20).toFixed(1)} MiB`);
    expect(arena).toBeGreaterThan(2 ** 20);
    // A leak would grow RSS by cycles × arena; half of that is the limit (without one, 2–22 MiB were measured for 30 cycles).
    expect(grown, `RSS grew ${(grown / 2 ** 20).toFixed(1)} MiB over ${cycles} load/infer/dispose cycles of a ${(arena / 2 ** 20).toFixed(1)} MiB arena`).toBeLessThan(0.5 * cycles * arena);
  });
});
