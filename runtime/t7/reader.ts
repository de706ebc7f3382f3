// Reads Torch7's binary serialization (torch.save's default format; test/data/t7/README.md) into the plain
// values of values.ts. Every failure names the file, the byte offset and the path of the field being read.
import { ByteSource, type TypedArrayCtor } from './byte-source.js';
import { DTYPE_ARRAYS, T7Function, T7Object, T7Storage, T7Table, T7Tensor, tensorClass, type T7DType, type T7Elements, type T7Key, type T7Value } from './values.js';

/** A truncated or corrupt file. `offset` is where the failing read started; `fieldPath` like `model.modules[3].weight`. */
export class T7FormatError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly offset: number,
    readonly fieldPath: string,
  ) {
    super(message);
    this.name = 'T7FormatError';
  }
}

export interface T7ReadOptions {
  /** Bytes in a Torch `long` (tensor sizes, strides, storage lengths): 8 on 64-bit Linux/macOS, 4 on 32-bit builds. */
  readonly longSize?: 4 | 8;
}

// Type tags (torch/File.lua).
const TAG = { nil: 0, number: 1, string: 2, table: 3, torch: 4, boolean: 5, function: 6, legacyRecursiveFunction: 7, recursiveFunction: 8 } as const;

/** Tensors deeper than this are corruption (Torch7 caps nDimension far lower in practice). */
const MAX_DIMS = 64;
/** Values nested deeper than this (tables in tables, upvalues of upvalues) are refused before the JS stack
 *  runs out; a real network nests a few levels (a Sequential in a Sequential, a module's fields). */
export const MAX_NESTING = 256;

/** Reads one .t7 file; tensor data is read once, straight into its typed arrays, so large files cost one copy. */
export function readT7File(file: string, options: T7ReadOptions = {}): T7Value {
  const source = ByteSource.openFile(file);
  try {
    return new T7Reader(source, file, options).readRoot();
  } finally {
    source.close();
  }
}

/** Reads .t7 bytes already in memory; aligned tensor data stays a view of `bytes`. `name` starts every error. */
export function readT7(bytes: Uint8Array, name: string, options: T7ReadOptions = {}): T7Value {
  return new T7Reader(ByteSource.fromBytes(bytes), name, options).readRoot();
}

const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `.weight`, `[3]`, `["a b"]`: how a key extends a field path. */
function keySegment(key: T7Key): string {
  if (typeof key === 'string') return identifier.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  if (typeof key === 'number' || typeof key === 'boolean') return `[${key}]`;
  return '[<table key>]';
}

class T7Reader {
  /** Torch's object table: tables, torch objects and recursive functions by their 1-based index in the file. */
  private readonly objects = new Map<number, T7Value>();
  private readonly path: string[] = [];
  private readonly longSize: 4 | 8;
  private depth = 0;

  constructor(
    private readonly source: ByteSource,
    private readonly file: string,
    options: T7ReadOptions,
  ) {
    this.longSize = options.longSize ?? 8;
    source.onTruncated = (offset, needs, left) => this.fail(offset, `truncated at byte ${offset}`, ` (needs ${needs} byte${needs === 1 ? '' : 's'}, ${left} left)`);
  }

  private where(): string {
    // A path hundreds of levels deep (a hostile file) is shown by its ends.
    const long = this.path.length > 12;
    const p = long ? `${this.path.slice(0, 4).join('')}…(${this.path.length - 8} more)…${this.path.slice(-4).join('')}` : this.path.join('');
    if (p === '') return 'the top-level object';
    return p.startsWith('.') ? p.slice(1) : p;
  }

  private fail(offset: number, what: string, detail = ''): never {
    const where = this.where();
    throw new T7FormatError(`${this.file}: ${what} while reading ${where}${detail}`, this.file, offset, where);
  }

  private within<T>(segment: string, read: () => T): T {
    this.path.push(segment);
    const v = read();
    this.path.pop();
    return v;
  }

  readRoot(): T7Value {
    // Torch ignores bytes after the object, and so does nincc (files are sometimes padded).
    return this.read();
  }

  read(): T7Value {
    const at = this.source.offset;
    if (this.depth >= MAX_NESTING) this.fail(at, `values nested deeper than ${MAX_NESTING} levels at byte ${at}`);
    this.depth++;
    try {
      return this.readTagged(at);
    } finally {
      this.depth--;
    }
  }

  private readTagged(at: number): T7Value {
    const tag = this.source.int32();
    switch (tag) {
      case TAG.nil:
        return null;
      case TAG.number:
        return this.source.float64();
      case TAG.string:
        return this.string();
      case TAG.boolean:
        return this.source.int32() === 1;
      case TAG.table:
        return this.indexed((index) => this.table(index));
      case TAG.torch:
        return this.indexed((index) => this.torchObject(index));
      case TAG.function:
        return this.luaFunction(TAG.function);
      case TAG.legacyRecursiveFunction:
      case TAG.recursiveFunction:
        return this.indexed((index) => this.luaFunction(tag, index));
      default:
        return this.fail(at, `unknown type tag ${tag} at byte ${at}`, ' (corrupt file, or not a Torch7 binary file)');
    }
  }

  /** An object with an index: a back-reference when the index was seen before, else read and registered. */
  private indexed(readNew: (index: number) => T7Value): T7Value {
    const index = this.source.int32();
    if (this.objects.has(index)) return this.objects.get(index)!;
    return readNew(index);
  }

  private string(): string {
    const at = this.source.offset;
    const length = this.source.int32();
    if (length < 0) this.fail(at, `negative string length ${length} at byte ${at}`);
    return new TextDecoder().decode(this.source.bytes(length));
  }

  private table(index: number): T7Table {
    const t = new T7Table();
    this.objects.set(index, t); // before the contents: a table may contain itself
    const at = this.source.offset;
    const count = this.source.int32();
    if (count < 0) this.fail(at, `negative table size ${count} at byte ${at}`);
    for (let i = 1; i <= count; i++) {
      const keyAt = this.source.offset;
      const key = this.within(`[key ${i}]`, () => this.read());
      if (key === null) this.fail(keyAt, `nil table key at byte ${keyAt}`);
      const value = this.within(keySegment(key), () => this.read());
      if (value !== null) t.entries.set(key, value); // Lua drops nil values
    }
    return t;
  }

  private torchObject(index: number): T7Value {
    const versionText = this.string();
    // Files from before Torch's versioning start directly with the class name (version 0).
    const m = /^V (.*)$/.exec(versionText);
    const version = m ? Number(m[1]) : NaN;
    const versioned = m !== null && !Number.isNaN(version);
    const className = versioned ? this.string() : versionText;
    const v = versioned ? version : 0;
    const tc = tensorClass(className);
    if (tc?.what === 'tensor') {
      const tensor = this.tensor(className, v, tc.dtype);
      this.objects.set(index, tensor);
      return tensor;
    }
    if (tc?.what === 'storage') {
      const storage = this.storage(className, v, tc.dtype);
      this.objects.set(index, storage);
      return storage;
    }
    const obj = new T7Object(className, v);
    this.objects.set(index, obj); // before the payload: an object may refer to itself
    if (className === 'tds.Hash' || className === 'tds.Vec') {
      obj.fields = this.tdsContainer(className === 'tds.Vec');
      return obj;
    }
    const at = this.source.offset;
    const payload = this.read();
    if (!(payload instanceof T7Table)) this.fail(at, `${className} object's payload at byte ${at} is not a table`);
    obj.fields = payload;
    return obj;
  }

  /** Torch `long`s for sizes, strides and lengths; past 2^53 or negative they can only be corruption. */
  private count(what: string): number {
    const at = this.source.offset;
    const n = this.source.long(this.longSize);
    if (n === undefined || n < 0) this.fail(at, `${what} ${n ?? 'beyond 2^53'} at byte ${at} is not a valid size`);
    return n;
  }

  private tensor(className: string, version: number, dtype: T7DType): T7Tensor {
    const at = this.source.offset;
    const dims = this.source.int32();
    if (dims < 0 || dims > MAX_DIMS) this.fail(at, `${className} with ${dims} dimensions at byte ${at}`);
    const sizes: number[] = [];
    const strides: number[] = [];
    for (let d = 0; d < dims; d++) sizes.push(this.count('tensor size'));
    for (let d = 0; d < dims; d++) strides.push(this.count('tensor stride'));
    const offset = this.count('storage offset') - 1; // stored 1-based
    const storageAt = this.source.offset;
    const storage = this.within('.storage', () => {
      const s = this.read();
      if (s === null || (s instanceof T7Storage && s.dtype === dtype)) return s;
      return this.fail(storageAt, `${className}'s storage at byte ${storageAt} is not a storage of ${dtype}`);
    });
    const tensor = new T7Tensor(className, version, dtype, sizes, strides, offset, storage);
    const numel = tensor.numel;
    if (numel > 0) {
      // The highest element the view touches must lie inside the storage.
      const last = offset + sizes.reduce((s, size, d) => s + (size - 1) * strides[d], 0);
      const length = storage?.length ?? 0;
      if (offset < 0 || last >= length) {
        this.fail(at, `${className} ${sizes.join('x')} (strides ${strides.join(',')}, offset ${offset + 1}) at byte ${at} reaches element ${last + 1} of a storage of ${length}`);
      }
    }
    return tensor;
  }

  private storage(className: string, version: number, dtype: T7DType): T7Storage {
    const n = this.count('storage length');
    const ctor = DTYPE_ARRAYS[dtype] as unknown as TypedArrayCtor<T7Elements>;
    return new T7Storage(className, version, dtype, this.source.elements(ctor, n));
  }

  /** tds.Hash writes a count and key/value pairs; tds.Vec a count and values (tds's hash.lua and vec.lua). */
  private tdsContainer(vector: boolean): T7Table {
    const n = this.count(vector ? 'tds.Vec length' : 'tds.Hash size');
    const t = new T7Table();
    for (let i = 1; i <= n; i++) {
      const key: T7Key | null = vector ? i : this.within(`[key ${i}]`, () => this.read());
      if (key === null) this.fail(this.source.offset, 'nil tds.Hash key');
      const value = this.within(keySegment(key), () => this.read());
      if (value !== null) t.entries.set(key, value);
    }
    return t;
  }

  /** Tag 6 has no index; 7 and 8 are registered before their upvalues, which may refer back to the function. */
  private luaFunction(tag: 6 | 7 | 8, index?: number): T7Function {
    const at = this.source.offset;
    const size = this.source.int32();
    if (size < 0) this.fail(at, `negative bytecode size ${size} at byte ${at}`);
    const fn = new T7Function(tag, this.source.bytes(size));
    if (index !== undefined) this.objects.set(index, fn);
    fn.upvalues = this.within('(upvalues)', () => this.read());
    return fn;
  }
}
