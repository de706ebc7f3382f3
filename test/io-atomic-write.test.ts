// writeFileAtomicSync: replaces files whole, and under NINCC_FAULT_WRITE fails like a full disk
// while leaving the previous file byte-identical and no temporary file behind.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FAULT_WRITE_ENV, atomicTempPath, writeFileAtomicSync } from '../runtime/io/atomic-write.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nincc-atomic-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  delete process.env[FAULT_WRITE_ENV];
});

describe('writeFileAtomicSync', () => {
  it('creates and then replaces a file, from a string, a buffer or chunks', () => {
    const file = path.join(dir, 'plain.txt');
    writeFileAtomicSync(file, 'first');
    expect(fs.readFileSync(file, 'utf8')).toBe('first');
    writeFileAtomicSync(file, new Uint8Array([1, 2, 3]));
    expect([...fs.readFileSync(file)]).toEqual([1, 2, 3]);
    writeFileAtomicSync(file, [new Uint8Array([4]), new Uint8Array(0), new Uint8Array([5, 6])]);
    expect([...fs.readFileSync(file)]).toEqual([4, 5, 6]);
    expect(fs.existsSync(atomicTempPath(file))).toBe(false);
  });

  it('names the temporary file PATH.tmp-<pid>', () => {
    expect(atomicTempPath('/x/model.safetensors')).toBe(`/x/model.safetensors.tmp-${process.pid}`);
  });

  it.each(['ENOSPC', 'EIO', 'EDQUOT'])('under %s=… leaves the old file intact and removes the tmp file', (code) => {
    const file = path.join(dir, `victim-${code}.bin`);
    const before = Buffer.from('the previous checkpoint, which must survive');
    fs.writeFileSync(file, before);
    process.env[FAULT_WRITE_ENV] = code;
    let caught: NodeJS.ErrnoException | undefined;
    try {
      writeFileAtomicSync(file, Buffer.alloc(4096, 7));
    } catch (err) {
      caught = err as NodeJS.ErrnoException;
    }
    expect(caught?.code).toBe(code);
    expect(caught?.syscall).toBe('write');
    expect(caught?.message).toContain(file);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((name) => name.includes('.tmp-'))).toEqual([]);
  });

  it('does not create the target when the first write fails', () => {
    const file = path.join(dir, 'never-written.bin');
    process.env[FAULT_WRITE_ENV] = 'ENOSPC';
    expect(() => writeFileAtomicSync(file, 'data')).toThrow(/^ENOSPC: no space left on device, write '.*never-written\.bin'/);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(atomicTempPath(file))).toBe(false);
  });

  it('rejects an unknown fault name instead of silently writing', () => {
    const file = path.join(dir, 'unknown-fault.bin');
    process.env[FAULT_WRITE_ENV] = 'EBANANA';
    expect(() => writeFileAtomicSync(file, 'data')).toThrow(
      `NINCC_FAULT_WRITE=EBANANA is not a fault this build can inject (known: ENOSPC, EIO, EDQUOT); refusing to write ${file}`,
    );
    expect(fs.existsSync(file)).toBe(false);
  });

  it('fails cleanly when the directory does not exist', () => {
    const file = path.join(dir, 'no-such-dir', 'x.bin');
    expect(() => writeFileAtomicSync(file, 'data')).toThrow(/ENOENT/);
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });
});
