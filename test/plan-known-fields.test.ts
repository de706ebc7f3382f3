// The native loader refuses plan.json's unknown fields (runtime/core/plan_loader.cc, docs/artifact.md): every field
// the compiler writes must be one it knows. Plans of the shipped models as the compiler emits them (cpu; emu bf16 with
// launch geometry, devices and uint8 input) are loaded with a stand-in library, so the load reads every field and
// then fails at the library, not at a field.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sealPlan } from '../compiler/emit/integrity.js';
import { compileModel, compileSpec, type CompileOptions } from '../compiler/pipeline.js';
import { load } from '../runtime/index.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-plan-fields-'));

async function loadError(name: string, spec: string, device: 'cpu' | 'emu', options: Partial<CompileOptions>): Promise<{ message: string; keys: Set<string> }> {
  const model = compileSpec(readFileSync(spec, 'utf8'), spec).model!;
  const library = `kernels.${device}.so`;
  const { plan } = compileModel(model, { target: device, maxBatch: 4, sourceHash: 'test', libraries: { [device]: library }, cpuFeatures: [], ...options });
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, library), 'not a library');
  const text = sealPlan(plan as unknown as { libraries: Record<string, string> }, dir);
  writeFileSync(join(dir, 'plan.json'), text);
  const keys = new Set<string>();
  JSON.parse(text, (k, v) => (keys.add(k), v));
  const message = await load(dir, { device }).then(() => 'loaded', (e: Error) => e.message);
  return { message, keys };
}

describe('plan.json fields the compiler writes', () => {
  it('are all known to the native loader: the load reaches the library', async () => {
    const cpu = await loadError('cpu', 'models/nin-fashion.model', 'cpu', {});
    expect(cpu.message).toMatch(/kernels\.cpu\.so: cannot load the cpu kernel library/);
    const emu = await loadError('emu', 'models/nin.model', 'emu', { precision: 'bf16', input: 'u8' });
    expect(emu.message).toMatch(/kernels\.emu\.so: cannot load the emu kernel library/);
    // The fields this test exists for were in the plans.
    for (const k of ['launch', 'devices', 'precision', 'imageInput', 'cpuFeatures', 'macsPerImage', 'splitBatch']) expect([k, cpu.keys.has(k) || emu.keys.has(k)]).toEqual([k, true]);
  });
});
