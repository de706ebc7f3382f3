// Crash-safe file replacement for checkpoints, logs and artifacts: readers see either the old file
// or the complete new one, never a prefix. NINCC_FAULT_WRITE injects disk failures for tests.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Errors NINCC_FAULT_WRITE can simulate, with the message Node itself would give. */
const INJECTABLE_FAULTS: Record<string, { errno: number; description: string }> = {
  ENOSPC: { errno: -28, description: 'no space left on device' },
  EIO: { errno: -5, description: 'i/o error' },
  EDQUOT: { errno: -122, description: 'disk quota exceeded' },
};

export const FAULT_WRITE_ENV = 'NINCC_FAULT_WRITE';

/** The temporary sibling a write goes through; exported so tests can assert it is gone. */
export function atomicTempPath(target: string): string {
  return `${target}.tmp-${process.pid}`;
}

/**
 * Replaces `target` with `contents` (one buffer, a string, or chunks written back to back so
 * large checkpoints need not be concatenated first).
 * Steps: write PATH.tmp-<pid>, fsync it, rename it over PATH, fsync the directory so the rename
 * itself survives a power cut. On any failure the temporary file is removed and PATH is untouched.
 */
export function writeFileAtomicSync(target: string, contents: string | Uint8Array | readonly Uint8Array[]): void {
  const chunks = toChunks(contents);
  const tmp = atomicTempPath(target);
  const fault = injectedFault(target);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w', 0o644);
    if (fault) {
      // Put some bytes on disk first, as a real full disk would, so cleanup is exercised for real.
      if (chunks.length > 0) writeFully(fd, chunks[0].subarray(0, Math.min(chunks[0].length, 512)));
      throw fault;
    }
    for (const chunk of chunks) writeFully(fd, chunk);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) closeQuietly(fd);
    removeQuietly(tmp);
    throw err;
  }
  fsyncDirectory(path.dirname(target));
}

function toChunks(contents: string | Uint8Array | readonly Uint8Array[]): readonly Uint8Array[] {
  if (typeof contents === 'string') return [Buffer.from(contents, 'utf8')];
  if (contents instanceof Uint8Array) return [contents];
  return contents;
}

/** writeSync may write less than asked (signals, pipes); loop until the chunk is on its way. */
function writeFully(fd: number, chunk: Uint8Array): void {
  let written = 0;
  while (written < chunk.length) {
    written += fs.writeSync(fd, chunk, written, chunk.length - written);
  }
}

function injectedFault(target: string): NodeJS.ErrnoException | undefined {
  const code = process.env[FAULT_WRITE_ENV];
  if (!code) return undefined;
  const known = INJECTABLE_FAULTS[code];
  if (!known) {
    throw new Error(
      `${FAULT_WRITE_ENV}=${code} is not a fault this build can inject ` +
        `(known: ${Object.keys(INJECTABLE_FAULTS).join(', ')}); refusing to write ${target}`,
    );
  }
  const err: NodeJS.ErrnoException = new Error(
    `${code}: ${known.description}, write '${target}' (injected by ${FAULT_WRITE_ENV})`,
  );
  err.code = code;
  err.errno = known.errno;
  err.syscall = 'write';
  err.path = target;
  return err;
}

/** Makes the rename durable. Some filesystems refuse fsync on directories; that is not fatal. */
function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EACCES') throw err;
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // Already failing; the original error is the one worth reporting.
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // Same: never mask the write error with a cleanup error.
  }
}

/** writeFileAtomicSync's steps on fs/promises, for async callers that must not block the event loop. */
export async function writeFileAtomic(target: string, contents: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const chunks = toChunks(contents);
  const tmp = atomicTempPath(target);
  const fault = injectedFault(target);
  let file: fs.promises.FileHandle | undefined;
  try {
    file = await fs.promises.open(tmp, 'w', 0o644);
    if (fault) {
      if (chunks.length > 0) await file.write(chunks[0].subarray(0, Math.min(chunks[0].length, 512)));
      throw fault;
    }
    for (const chunk of chunks) await file.write(chunk); // FileHandle.write loops until the chunk is written
    await file.sync();
    await file.close();
    file = undefined;
    await fs.promises.rename(tmp, target);
  } catch (err) {
    if (file !== undefined) await file.close().catch(() => {});
    await fs.promises.rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
  fsyncDirectory(path.dirname(target));
}
