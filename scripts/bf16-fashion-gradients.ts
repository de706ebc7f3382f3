// One step of models/nin-fashion.model's gradients (batch 8, its first mini Fashion-MNIST batch, seed 19)
// on emu in bf16 against cpu in fp32, per parameter tensor, beside two controls that say what a difference
// means here: the cpu gradients after rounding the weights to bf16 (how much a bf16-sized change of the
// inputs moves them: the gradient's conditioning) and the emu gradients after moving every weight by at most
// one fp32 ulp (how much fp32 rounding order alone moves the bf16 path). `--save FILE` writes the emu
// gradients, `--compare FILE` adds their difference to another build's (e.g. an older commit's kernels).
// `node dist/scripts/bf16-fashion-gradients.js [WORKDIR] [--save FILE] [--compare FILE]`.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load, type Model } from '../runtime/model.js';
import { buildFashion, fashionBatches, roundBf16 } from './bf16-fashion-curve.js';

/** ‖a − b‖ / ‖b‖. */
function relativeDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, norm = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff / norm);
}

/** Each value moved up or down by one fp32 ulp (a seeded choice), 0 left alone. */
function nudged(data: Float32Array, seed: number): Float32Array {
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  let state = seed >>> 0;
  for (let i = 0; i < bits.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    if ((bits[i] & 0x7fffffff) !== 0) bits[i] += state & 0x80000000 ? 1 : -1;
  }
  return new Float32Array(bits.buffer);
}

/** The gradients of every parameter after one forward+backward of `images` from `weights`. */
async function gradients(m: Model, weights: Map<string, Float32Array>, images: Float32Array, labels: Int32Array): Promise<Map<string, Float32Array>> {
  for (const [name, w] of weights) m.setTensor(name, w);
  await m.forwardBackward(images, labels);
  return new Map(m.info.params.map((t) => [t.name, m.getGradient(t.name)]));
}

if (process.argv[1]?.endsWith('bf16-fashion-gradients.js')) {
  const option = (flag: string) => (process.argv.includes(flag) ? process.argv[process.argv.indexOf(flag) + 1] : undefined);
  const args = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
  const work = args[0] ?? mkdtempSync(join(tmpdir(), 'nincc-bf16-grad-'));
  const dirs = buildFashion(work);
  const { images, labels } = fashionBatches()(0);
  const cpu = await load(dirs.cpu, { device: 'cpu', seed: 19 });
  const emu = await load(dirs.emu, { device: 'emu', seed: 19 });
  try {
    const weights = new Map(cpu.tensorNames().map((name) => [name, cpu.getTensor(name)]));
    const reference = await gradients(cpu, weights, images, labels);
    const rounded = await gradients(cpu, new Map([...weights].map(([name, w]) => [name, roundBf16(w, 'nearest')])), images, labels);
    const bf16 = await gradients(emu, weights, images, labels);
    const nudgedBf16 = await gradients(emu, new Map([...weights].map(([name, w], i) => [name, nudged(w, i + 1)])), images, labels);
    const saved = option('--save');
    if (saved) writeFileSync(saved, JSON.stringify(Object.fromEntries([...bf16].map(([name, g]) => [name, Array.from(g)]))));
    const compared = option('--compare');
    const other: Record<string, number[]> | undefined = compared ? JSON.parse(readFileSync(compared, 'utf8')) : undefined;
    console.log('‖Δ‖/‖g‖ per parameter tensor, one step of nin-fashion (batch 8):');
    console.log(`tensor             ‖g cpu‖    emu−cpu    cpu(bf16 weights)−cpu  emu(±1 ulp weights)−emu${other ? `  emu−${compared}` : ''}`);
    for (const [name, g] of reference) {
      const cells = [relativeDistance(bf16.get(name)!, g), relativeDistance(rounded.get(name)!, g), relativeDistance(nudgedBf16.get(name)!, bf16.get(name)!)];
      if (other) cells.push(relativeDistance(bf16.get(name)!, other[name]));
      console.log(`${name.padEnd(18)} ${Math.sqrt(g.reduce((s, x) => s + x * x, 0)).toExponential(2)}   ${cells.map((c) => c.toExponential(2).padEnd(10)).join(' ')}`);
    }
  } finally {
    await cpu.dispose();
    await emu.dispose();
  }
  if (args[0] === undefined) rmSync(work, { recursive: true, force: true });
}
