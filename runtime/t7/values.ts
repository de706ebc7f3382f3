// The values a Torch7 .t7 file holds, as plain JS data: Lua tables, torch objects of any class, tensors over
// (possibly shared) storages, and Lua functions kept as opaque bytecode that nincc never runs.

export type T7DType = 'float64' | 'float32' | 'float16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8';

/** A storage's elements; float16 stays as raw 16-bit patterns, int64 as BigInt64Array (both convert on demand). */
export type T7Elements = Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export const DTYPE_ARRAYS = {
  float64: Float64Array,
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
} as const;

// Torch's element type names. `Char` is C `char`, signed on x86_64; a CudaTensor holds floats.
const ELEMENT_TYPES: Readonly<Record<string, T7DType>> = {
  Double: 'float64',
  Float: 'float32',
  Half: 'float16',
  Long: 'int64',
  Int: 'int32',
  Short: 'int16',
  Char: 'int8',
  Byte: 'uint8',
};

/** torch.FloatTensor, torch.CudaTensor, torch.CudaLongStorage, …: what it is and its element type. */
export function tensorClass(className: string): { what: 'tensor' | 'storage'; dtype: T7DType } | undefined {
  const m = /^torch\.(Cuda)?(Double|Float|Half|Long|Int|Short|Char|Byte)?(Tensor|Storage)$/.exec(className);
  if (!m) return undefined;
  const element = m[2] ?? (m[1] ? 'Float' : undefined);
  if (!element) return undefined; // plain torch.Tensor is a constructor, never a serialized class
  return { what: m[3] === 'Tensor' ? 'tensor' : 'storage', dtype: ELEMENT_TYPES[element] };
}

export type T7Value = null | boolean | number | string | T7Table | T7Object | T7Tensor | T7Storage | T7Function;
/** Lua never stores nil as a key. */
export type T7Key = Exclude<T7Value, null>;

/** A Lua table: keys are Lua values (numbers, strings, or other tables and objects by identity). */
export class T7Table {
  readonly entries = new Map<T7Key, T7Value>();

  get size(): number {
    return this.entries.size;
  }

  get(key: T7Key): T7Value | undefined {
    return this.entries.get(key);
  }

  /** The sequence part: the values at keys 1, 2, … up to the first missing key (Lua's ipairs). */
  list(): T7Value[] {
    const out: T7Value[] = [];
    for (let i = 1; this.entries.has(i); i++) out.push(this.entries.get(i)!);
    return out;
  }
}

/** A torch object of any class whose payload is a table of fields (every nn.* and cudnn.* module), or tds.Hash/Vec. */
export class T7Object {
  constructor(
    readonly className: string,
    readonly version: number,
    /** Replaced once the payload is read: the object is registered first so its fields may refer back to it. */
    public fields: T7Table = new T7Table(),
  ) {}

  get(key: T7Key): T7Value | undefined {
    return this.fields.get(key);
  }
}

export class T7Storage {
  constructor(
    readonly className: string,
    readonly version: number,
    readonly dtype: T7DType,
    readonly data: T7Elements,
  ) {}

  get length(): number {
    return this.data.length;
  }

  toNumbers(): number[] {
    return Array.from(this.data as ArrayLike<number | bigint>, (v) => Number(v));
  }
}

/** A tensor: a strided view (sizes, strides in elements, 0-based offset) of a storage that other tensors may share. */
export class T7Tensor {
  constructor(
    readonly className: string,
    readonly version: number,
    readonly dtype: T7DType,
    readonly sizes: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
    readonly storage: T7Storage | null,
  ) {}

  /** Torch7: a 0-dimensional tensor is empty. */
  get numel(): number {
    return this.sizes.length === 0 ? 0 : this.sizes.reduce((a, b) => a * b, 1);
  }

  isContiguous(): boolean {
    let expected = 1;
    for (let d = this.sizes.length - 1; d >= 0; d--) {
      if (this.sizes[d] === 1) continue;
      if (this.strides[d] !== expected) return false;
      expected *= this.sizes[d];
    }
    return true;
  }

  /** The elements in row-major order as float32: a view of the storage when it already is, else one copy. */
  toFloat32(): Float32Array {
    if (this.dtype === 'float32' && this.isContiguous() && this.storage) {
      return (this.storage.data as Float32Array).subarray(this.offset, this.offset + this.numel);
    }
    return this.materialise(new Float32Array(this.numel));
  }

  toFloat64(): Float64Array {
    return this.materialise(new Float64Array(this.numel));
  }

  toNumbers(): number[] {
    return Array.from(this.toFloat64());
  }

  /** Gathers the strided view into `out` (row-major), converting int64 and float16 elements to numbers. */
  private materialise<T extends Float32Array | Float64Array>(out: T): T {
    const n = this.numel;
    if (n === 0 || !this.storage) return out;
    const read = elementReader(this.storage);
    const dims = this.sizes.length;
    const last = dims - 1;
    const innerSize = this.sizes[last];
    const innerStride = this.strides[last];
    const index = new Array<number>(dims).fill(0);
    let base = this.offset;
    for (let o = 0; o < n; o += innerSize) {
      for (let j = 0, at = base; j < innerSize; j++, at += innerStride) out[o + j] = read(at);
      // Odometer over the outer dimensions.
      for (let d = last - 1; d >= 0; d--) {
        index[d]++;
        base += this.strides[d];
        if (index[d] < this.sizes[d]) break;
        base -= this.strides[d] * this.sizes[d];
        index[d] = 0;
      }
    }
    return out;
  }
}

function elementReader(storage: T7Storage): (i: number) => number {
  const data = storage.data;
  if (data instanceof BigInt64Array) return (i) => Number(data[i]);
  if (storage.dtype === 'float16') return (i) => halfToFloat(data[i] as number);
  const numbers = data as Exclude<T7Elements, BigInt64Array>;
  return (i) => numbers[i];
}

/** IEEE 754 binary16 → number. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A serialized Lua function (type tags 6, 7, 8): nincc keeps its bytecode and upvalues but never runs it. */
export class T7Function {
  constructor(
    /** 6: plain function; 7: legacy recursive (raw upvalues); 8: recursive ({name, value} upvalues). */
    readonly tag: 6 | 7 | 8,
    readonly bytecode: Uint8Array,
    public upvalues: T7Value = null,
  ) {}

  get bytecodeLength(): number {
    return this.bytecode.byteLength;
  }
}

/** What a value is, for messages: `a table`, `torch.FloatTensor 2x3`, `the string "abc"`. */
export function describeValue(v: T7Value | undefined): string {
  if (v === undefined || v === null) return 'nil';
  if (typeof v === 'number') return `the number ${v}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'boolean') return `the boolean ${v}`;
  if (v instanceof T7Table) return `a table of ${v.size} entr${v.size === 1 ? 'y' : 'ies'}`;
  if (v instanceof T7Tensor) return `${v.className} ${v.sizes.join('x') || '(empty)'}`;
  if (v instanceof T7Storage) return `${v.className} of ${v.length}`;
  if (v instanceof T7Function) return `a Lua function (${v.bytecodeLength} bytes of bytecode)`;
  return `a ${v.className} object`;
}
