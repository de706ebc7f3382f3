// A Torch7 binary serializer for tests, written from the format description in test/data/t7/README.md
// (torch/File.lua's writeObject), so the reader can be checked against files nincc did not read first.
// It writes the reader's own value classes; a JS object written twice becomes a back-reference.
import { T7Function, T7Object, T7Storage, T7Table, T7Tensor, type T7DType, type T7Elements, type T7Value } from '../../runtime/t7/values.js';

const TAG = { nil: 0, number: 1, string: 2, table: 3, torch: 4, boolean: 5 } as const;

export interface WriterOptions {
  /** Bytes in a Torch long (default 8, as on x86_64). */
  readonly longSize?: 4 | 8;
}

export function writeT7(value: T7Value, options: WriterOptions = {}): Uint8Array {
  const w = new T7Writer(options.longSize ?? 8);
  w.write(value);
  return w.bytes();
}

class T7Writer {
  private readonly chunks: Uint8Array[] = [];
  private readonly indices = new Map<object, number>();

  constructor(private readonly longSize: 4 | 8) {}

  bytes(): Uint8Array {
    return Buffer.concat(this.chunks);
  }

  private int32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.chunks.push(b);
  }

  private long(v: number): void {
    if (this.longSize === 4) return this.int32(v);
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v));
    this.chunks.push(b);
  }

  private float64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(v);
    this.chunks.push(b);
  }

  private string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.int32(b.length);
    this.chunks.push(b);
  }

  /** Writes the index; true when the object was written before (a back-reference: nothing follows). */
  private index(o: object): boolean {
    const seen = this.indices.get(o);
    if (seen !== undefined) {
      this.int32(seen);
      return true;
    }
    const i = this.indices.size + 1;
    this.indices.set(o, i);
    this.int32(i);
    return false;
  }

  /** "V n" then the class name; version 0 is the pre-versioning form, the class name alone (tds still writes "V 0"). */
  private header(className: string, version: number): void {
    if (version !== 0 || className.startsWith('tds.')) this.string(`V ${version}`);
    this.string(className);
  }

  write(v: T7Value): void {
    if (v === null) return this.int32(TAG.nil);
    if (typeof v === 'number') {
      this.int32(TAG.number);
      return this.float64(v);
    }
    if (typeof v === 'string') {
      this.int32(TAG.string);
      return this.string(v);
    }
    if (typeof v === 'boolean') {
      this.int32(TAG.boolean);
      return this.int32(v ? 1 : 0);
    }
    if (v instanceof T7Function) {
      this.int32(v.tag);
      if (v.tag !== 6 && this.index(v)) return;
      this.int32(v.bytecode.byteLength);
      this.chunks.push(v.bytecode);
      return this.write(v.upvalues);
    }
    if (v instanceof T7Table) {
      this.int32(TAG.table);
      if (this.index(v)) return;
      this.int32(v.size);
      for (const [key, value] of v.entries) {
        this.write(key);
        this.write(value);
      }
      return;
    }
    this.int32(TAG.torch);
    if (this.index(v)) return;
    this.header(v.className, v.version);
    if (v instanceof T7Tensor) {
      this.int32(v.sizes.length);
      for (const s of v.sizes) this.long(s);
      for (const s of v.strides) this.long(s);
      this.long(v.offset + 1);
      return this.write(v.storage);
    }
    if (v instanceof T7Storage) {
      this.long(v.length);
      this.chunks.push(new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength));
      return;
    }
    if (v.className === 'tds.Hash' || v.className === 'tds.Vec') {
      this.long(v.fields.size);
      for (const [key, value] of v.fields.entries) {
        if (v.className === 'tds.Hash') this.write(key);
        this.write(value);
      }
      return;
    }
    this.write(v.fields);
  }
}

// Builders, so tests read like the Lua that made the file.

/** A table from a JS object (string keys) or from [key, value] pairs (any keys, in order). */
export function table(entries: Record<string, T7Value> | readonly (readonly [Exclude<T7Value, null>, T7Value])[]): T7Table {
  const t = new T7Table();
  for (const [k, v] of Array.isArray(entries) ? entries : Object.entries(entries)) t.entries.set(k, v);
  return t;
}

/** A Lua list {a, b, c}: keys 1..n as numbers, as Torch writes nn.Sequential's modules. */
export const list = (values: readonly T7Value[]) => table(values.map((v, i) => [i + 1, v] as const));

export const object = (className: string, fields: Record<string, T7Value>, version = 1) => new T7Object(className, version, table(fields));

const CLASS_PREFIX: Record<T7DType, string> = { float64: 'Double', float32: 'Float', float16: 'Half', int64: 'Long', int32: 'Int', int16: 'Short', int8: 'Char', uint8: 'Byte' };

export function storage(dtype: T7DType, data: T7Elements, cuda = false): T7Storage {
  const name = cuda && dtype === 'float32' ? 'Cuda' : `${cuda ? 'Cuda' : ''}${CLASS_PREFIX[dtype]}`;
  return new T7Storage(`torch.${name}Storage`, 1, dtype, data);
}

/** A tensor viewing `s`: contiguous by default; give strides and offset (0-based) for other views. */
export function tensor(s: T7Storage | null, sizes: readonly number[], view: { strides?: readonly number[]; offset?: number } = {}): T7Tensor {
  const strides = view.strides ?? sizes.map((_, d) => sizes.slice(d + 1).reduce((a, b) => a * b, 1));
  const className = s ? s.className.replace(/Storage$/, 'Tensor') : 'torch.FloatTensor';
  return new T7Tensor(className, 1, s?.dtype ?? 'float32', sizes, strides, view.offset ?? 0, s);
}

/** A fresh contiguous float32 (or float64) tensor holding `values`. */
export function floatTensor(values: ArrayLike<number>, sizes: readonly number[], dtype: 'float32' | 'float64' = 'float32'): T7Tensor {
  return tensor(storage(dtype, dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values)), sizes);
}

/** Stand-in bytecode: the reader keeps it opaque, so any bytes do (a LuaJIT dump starts with ESC "LJ"). */
export function luaFunction(upvalues: T7Value = table({}), tag: 6 | 7 | 8 = 8): T7Function {
  return new T7Function(tag, Uint8Array.from([0x1b, 0x4c, 0x4a, 0x01, 0x00, 0x02, 0x04, 0x08]), upvalues);
}
