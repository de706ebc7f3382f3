// Sequential little-endian reads over a .t7 file (or bytes in memory), bounds-checked so a short file
// fails with the byte offset of the read that ran out. Bulk element data goes straight into its typed array.
import * as fs from 'node:fs';

/** Called when a read needs more bytes than are left; it throws the caller's error (which knows the field path). */
export type OnTruncated = (offset: number, needs: number, left: number) => never;

export type TypedArrayCtor<T> = { new (length: number): T; new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

/** Small reads are served from a window; 64 KiB keeps the number of read() calls low on headers and tables. */
const WINDOW_BYTES = 64 * 1024;
/** read() takes at most 2 GiB at a time. */
const MAX_READ_BYTES = 1 << 30;

export class ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  private readonly fd: number | undefined;
  /** In file mode the window is a buffer refilled from `windowStart`; in memory mode it is the whole input. */
  private window: Uint8Array;
  private view: DataView;
  private windowStart = 0;
  private pos = 0;
  onTruncated: OnTruncated = (offset, needs, left) => {
    throw new Error(`truncated at byte ${offset} (needs ${needs} bytes, ${left} left)`);
  };

  private constructor(window: Uint8Array, size: number, fd: number | undefined) {
    this.window = window;
    this.view = new DataView(window.buffer, window.byteOffset, window.byteLength);
    this.size = size;
    this.fd = fd;
  }

  static fromBytes(bytes: Uint8Array): ByteSource {
    return new ByteSource(bytes, bytes.byteLength, undefined);
  }

  /** Opens a file for reading; call close() when done. */
  static openFile(path: string): ByteSource {
    const fd = fs.openSync(path, 'r');
    const size = fs.fstatSync(fd).size;
    const source = new ByteSource(new Uint8Array(0), size, fd);
    source.window = new Uint8Array(Math.min(WINDOW_BYTES, Math.max(size, 1)));
    source.view = new DataView(source.window.buffer);
    source.windowStart = 0;
    source.fill(0);
    return source;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
  }

  /** The offset of the next byte to be read. */
  get offset(): number {
    return this.pos;
  }

  get left(): number {
    return this.size - this.pos;
  }

  private get memory(): boolean {
    return this.fd === undefined;
  }

  private fill(from: number): void {
    this.windowStart = from;
    const want = Math.min(this.window.byteLength, this.size - from);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(this.fd!, this.window, got, want - got, from + got);
      if (n === 0) break;
      got += n;
    }
  }

  /** Makes `n` bytes at the cursor addressable through the window; returns their offset within it. */
  private at(n: number): number {
    if (n > this.size - this.pos) this.onTruncated(this.pos, n, this.size - this.pos);
    if (this.memory) return this.pos;
    const end = this.windowStart + Math.min(this.window.byteLength, this.size - this.windowStart);
    if (this.pos < this.windowStart || this.pos + n > end) this.fill(this.pos);
    return this.pos - this.windowStart;
  }

  int32(): number {
    const i = this.at(4);
    this.pos += 4;
    return this.view.getInt32(i, true);
  }

  /** A Torch `long` (8 bytes on the x86_64 files nincc reads, 4 on 32-bit ones) as a number; `undefined` past 2^53. */
  long(bytes: 4 | 8): number | undefined {
    if (bytes === 4) return this.int32();
    const i = this.at(8);
    this.pos += 8;
    const v = this.view.getBigInt64(i, true);
    return v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER) ? undefined : Number(v);
  }

  float64(): number {
    const i = this.at(8);
    this.pos += 8;
    return this.view.getFloat64(i, true);
  }

  /** `n` raw bytes: a view of the input in memory mode, a fresh copy in file mode. */
  bytes(n: number): Uint8Array {
    if (n > this.size - this.pos) this.onTruncated(this.pos, n, this.size - this.pos);
    if (this.memory) {
      const out = this.window.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }
    const out = new Uint8Array(n);
    this.readInto(out);
    return out;
  }

  /**
   * `count` elements of `ctor`'s type. The data is copied at most once: in file mode it is read straight
   * into the new array; in memory mode it is a view of the input when aligned, else one copy.
   */
  elements<T extends ArrayBufferView>(ctor: TypedArrayCtor<T>, count: number): T {
    const n = count * ctor.BYTES_PER_ELEMENT;
    if (n > this.size - this.pos) this.onTruncated(this.pos, n, this.size - this.pos);
    if (this.memory) {
      const byteOffset = this.window.byteOffset + this.pos;
      let out: T;
      if (byteOffset % ctor.BYTES_PER_ELEMENT === 0) out = new ctor(this.window.buffer, byteOffset, count);
      else {
        out = new ctor(count);
        new Uint8Array(out.buffer, out.byteOffset, n).set(this.window.subarray(this.pos, this.pos + n));
      }
      this.pos += n;
      return out;
    }
    const out = new ctor(count);
    this.readInto(new Uint8Array(out.buffer, out.byteOffset, n));
    return out;
  }

  /** File mode: whatever the window holds, then the rest directly from the file into `target`. */
  private readInto(target: Uint8Array): void {
    const n = target.byteLength;
    const windowEnd = this.windowStart + Math.min(this.window.byteLength, this.size - this.windowStart);
    let done = 0;
    if (this.pos >= this.windowStart && this.pos < windowEnd) {
      done = Math.min(n, windowEnd - this.pos);
      target.set(this.window.subarray(this.pos - this.windowStart, this.pos - this.windowStart + done));
    }
    while (done < n) {
      const got = fs.readSync(this.fd!, target, done, Math.min(n - done, MAX_READ_BYTES), this.pos + done);
      if (got === 0) this.onTruncated(this.pos + done, n - done, 0); // the file shrank while we read it
      done += got;
    }
    this.pos += n;
  }
}
