// Damaged and edited artifacts (issue #21, findings 4 and 5): any byte of kernels.cpu.so, any offset, size or
// kernel name of plan.json, changed after the build, is refused by load() before the library is opened, with
// an error naming the file. Before, such edits crashed the process (SIGBUS, SIGSEGV, abort()) or ran silently.
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrityProblem, sealPlan } from '../compiler/emit/integrity.js';
import { load } from '../runtime/model.js';
import { buildSpec, rng, type Built } from './reference/artifacts.js';

const spec = 'model integrity { input 1x4x4 conv(1, 2, 3, 3, 1, 1, 1, 1) bn(2) relu view(-1) linear(32, 3) logsoftmax }\n';

/** Replaces a file by a new one (a new inode): writing over a library some load may still map would crash the process. */
function replaceFile(path: string, bytes: string | Buffer): void {
  writeFileSync(`${path}.new`, bytes);
  renameSync(`${path}.new`, path);
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every place in the plan an edit must be caught: [path, value] of each offset, size and kernel name. */
function editablePlaces(value: Json, path: (string | number)[] = [], out: [(string | number)[], number | string][] = []) {
  if (Array.isArray(value)) value.forEach((v, i) => editablePlaces(v, [...path, i], out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if ((k === 'offset' || k === 'size') && typeof v === 'number') out.push([[...path, k], v]);
      else if (k === 'kernel' && typeof v === 'string') out.push([[...path, k], v]);
      else editablePlaces(v, [...path, k], out);
    }
  }
  return out;
}

function setAt(root: Json, path: readonly (string | number)[], value: Json): void {
  let node = root as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, Json>;
  node[path[path.length - 1]] = value;
}

describe('artifact integrity', () => {
  let built: Built;
  let work: string;
  let dir: string;
  let plan: string;
  let library: Buffer;
  beforeAll(() => {
    built = buildSpec('integrity', spec, 2);
    work = mkdtempSync(join(tmpdir(), 'nincc-integrity-'));
    dir = join(work, 'edited');
    cpSync(built.dir, dir, { recursive: true });
    plan = readFileSync(join(dir, 'plan.json'), 'utf8');
    library = readFileSync(join(dir, 'kernels.cpu.so'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** load() on the edited copy must reject with a message matching `expected`; the copy is restored after. */
  async function expectRefused(file: 'plan.json' | 'kernels.cpu.so', bytes: string | Buffer, expected: RegExp): Promise<void> {
    replaceFile(join(dir, file), bytes);
    try {
      const err = await load(dir).then(
        (m) => {
          m.dispose();
          return 'loaded';
        },
        (e: Error) => e.message,
      );
      expect(err).toMatch(expected);
    } finally {
      replaceFile(join(dir, file), file === 'plan.json' ? plan : library);
    }
  }

  it('the untouched copy loads and passes the build-side check', async () => {
    expect(integrityProblem(dir)).toBeUndefined();
    (await load(dir)).dispose();
  });

  it('120 single-byte edits and 20 truncations of kernels.cpu.so are refused before dlopen, naming the library', async () => {
    const next = rng(21);
    const refused = new RegExp(`^${join(dir, 'kernels.cpu.so')}: the cpu kernel library's SHA-256 is [0-9a-f]{64} but ${join(dir, 'plan.json')} records [0-9a-f]{64}: the library was changed or damaged after the build; rebuild the artifact`);
    for (let i = 0; i < 120; i++) {
      const edited = Buffer.from(library);
      const at = Math.floor(next() * edited.length);
      edited[at] ^= 1 + Math.floor(next() * 255);
      await expectRefused('kernels.cpu.so', edited, refused);
    }
    for (let i = 0; i < 20; i++) await expectRefused('kernels.cpu.so', library.subarray(0, Math.floor(next() * library.length)), refused);
  });

  it('every offset, size and kernel name of plan.json edited (and kernels abort, exit, free) is refused, naming the plan', async () => {
    const places = editablePlaces(JSON.parse(plan) as Json);
    const kernels = [...new Set(places.filter(([, v]) => typeof v === 'string').map(([, v]) => v as string))];
    expect(places.length).toBeGreaterThan(60);
    const refused = new RegExp(`^${join(dir, 'plan.json')}: the plan's SHA-256 is [0-9a-f]{64} but it records [0-9a-f]{64}: plan.json was edited or damaged after the build; rebuild the artifact`);
    let edits = 0;
    for (const [path, value] of places) {
      const replacements: Json[] = typeof value === 'number' ? [value + 1, Math.max(0, value - 1)].filter((v) => v !== value) : [...kernels.filter((k) => k !== value).slice(0, 1), 'abort', 'exit', 'free'];
      for (const replacement of replacements) {
        const edited = JSON.parse(plan) as Json;
        setAt(edited, path, replacement);
        await expectRefused('plan.json', JSON.stringify(edited, null, 1) + '\n', refused);
        edits++;
      }
    }
    expect(edits).toBeGreaterThanOrEqual(150);
    // Dropping the hashes is no way around them.
    const bare = JSON.parse(plan) as Record<string, Json>;
    delete bare.integrity;
    await expectRefused('plan.json', JSON.stringify(bare), /plan\.json: integrity: missing required field$/);
  });

  it('a resealed plan (a mistake that passes the hash) still calls only kernels of the table, with their buffers', async () => {
    type Step = { kernel: string; args: { size: number }[] };
    const steps = (p: Json, program: string) => ((p as { programs: Record<string, { steps: Step[] }> }).programs[program]).steps;
    const resealed = (change: (p: Json) => void) => {
      const edited = JSON.parse(plan) as Json;
      change(edited);
      return sealPlan(edited as { libraries: Record<string, string> }, dir);
    };
    for (const symbol of ['abort', 'exit', 'free', 'nincc_abi']) {
      const text = resealed((p) => (steps(p, 'infer')[0].kernel = symbol));
      await expectRefused('plan.json', text, new RegExp(`kernels\\.cpu\\.so: kernel ${symbol} \\(layer 1 at .*\\) is not in the library's kernel table`));
    }
    // A training kernel in an inference step: its buffers are not the ones the kernel was generated for.
    const inferKernels = new Set(steps(JSON.parse(plan) as Json, 'infer').map((st) => st.kernel));
    const training = steps(JSON.parse(plan) as Json, 'train_forward_backward').find((st) => !inferKernels.has(st.kernel))!;
    const swapped = resealed((p) => (steps(p, 'infer')[0].kernel = training.kernel));
    await expectRefused('plan.json', swapped, new RegExp(`kernel ${training.kernel} \\(layer 1 at .*\\) takes `));
    const shrunk = resealed((p) => (steps(p, 'infer')[0].args[0].size -= 1));
    await expectRefused('plan.json', shrunk, /takes as argument 0 \d+ elements of act, but the step passes \d+ of act/);
  });

  it('an inference program with no inputs (resealed) is an error at the call, not a hang', async () => {
    const edited = JSON.parse(plan) as { libraries: Record<string, string>; programs: Record<string, { inputs: Record<string, Json> }> };
    edited.programs.infer.inputs = {};
    replaceFile(join(dir, 'plan.json'), sealPlan(edited, dir));
    try {
      const m = await load(dir);
      try {
        await expect(m.infer(new Float32Array(16))).rejects.toThrow('program "infer" has no input "images" (its inputs: none)');
      } finally {
        m.dispose();
      }
    } finally {
      replaceFile(join(dir, 'plan.json'), plan);
    }
  });

  it('nincc build does not call a damaged artifact up to date', () => {
    const damaged = Buffer.from(library);
    damaged[100] ^= 0xff;
    replaceFile(join(built.dir, 'kernels.cpu.so'), damaged);
    expect(integrityProblem(built.dir)).toBe(`${join(built.dir, 'kernels.cpu.so')}: does not match the hash in ${join(built.dir, 'plan.json')}`);
    buildSpec('integrity', spec, 2);
    expect(integrityProblem(built.dir)).toBeUndefined();
  });
});
