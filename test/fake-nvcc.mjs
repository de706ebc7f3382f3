#!/usr/bin/env node
// A stand-in for nvcc (NINCC_NVCC=test/fake-nvcc.mjs) for tests that run the cuda device on the fake driver
// (runtime/core/tests/fake_cuda_driver.cc): `--version` names a release; a compile writes the fake driver's
// "fatbin" text instead of a GPU module: the source hash, and per NINCC_KERNEL its parameter signature (read off
// its parameter list), `kernel:<name>=nop` (the launch does nothing) and `hash:<name>=<12 hex of the SHA-256 of
// the kernel's text>`, by which FAKE_CUDA_MICROS gives each kernel text a duration. The ptxas report is empty.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write('fake nvcc for the nincc tests\nCuda compilation tools, release 12.4, V12.4.0\n');
  process.exit(0);
}
const source = readFileSync(args[args.indexOf('-x') + 2], 'utf8');
const output = args[args.indexOf('-o') + 1];

/** emu_abi.h's code of one parameter's declaration. */
function code(param) {
  if (param.includes('*')) return 'p';
  if (/\bdouble\b/.test(param)) return 'd';
  if (/\bfloat\b/.test(param)) return 'f';
  if (/unsigned long long|uint64_t/.test(param)) return 'L';
  if (/long long|int64_t/.test(param)) return 'l';
  if (/unsigned|uint32_t/.test(param)) return 'u';
  if (/\bint\b|int32_t/.test(param)) return 'i';
  throw new Error(`fake nvcc: no signature code for the parameter '${param}'`);
}

/** The kernel's text: from NINCC_KERNEL to the brace that closes its body. */
function kernelText(at) {
  let depth = 0;
  for (let i = source.indexOf('{', at); i < source.length; i++) {
    if (source[i] === '{') depth++;
    else if (source[i] === '}' && --depth === 0) return source.slice(at, i + 1);
  }
  throw new Error('fake nvcc: a kernel without the end of its body');
}

const lines = [`nincc_source_hash=${/NINCC_LIBRARY\("([^"]*)"\)/.exec(source)[1]}`];
for (const m of source.matchAll(/^NINCC_KERNEL\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(([^)]*)\)/gm)) {
  const [, name, params] = m;
  const signature = params.split(',').map((p) => p.trim()).filter((p) => p !== '' && p !== 'void').map(code).join('');
  const hash = createHash('sha256').update(kernelText(m.index)).digest('hex').slice(0, 12);
  lines.push(`nincc_signature_${name}=${signature}`, `kernel:${name}=nop`, `hash:${name}=${hash}`);
}
writeFileSync(output, `${lines.join('\n')}\n`);
