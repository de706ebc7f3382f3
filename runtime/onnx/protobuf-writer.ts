// A minimal protocol-buffers encoder: just the wire types an ONNX file needs (varint, 32-bit float,
// length-delimited), written by hand so export has no dependency on a protobuf library.

/** Wire types from the protobuf encoding spec: the low three bits of every field's tag. */
const enum WireType {
  Varint = 0,
  LengthDelimited = 2,
  Fixed32 = 5,
}

const utf8 = new TextEncoder();
const TWO_POW_64 = 1n << 64n;

/**
 * Collects the bytes of one message. Nested messages are encoded into their own writer first and
 * added with `message()`: a length-delimited field needs its length before its bytes.
 */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = []; // small writes (tags, varints) batched into one chunk
  private length = 0; // bytes in `chunks`

  /** An int32/int64/enum field. Negative values take ten bytes, as int64 two's complement. */
  varint(field: number, value: number | bigint): this {
    this.tag(field, WireType.Varint);
    this.rawVarint(value);
    return this;
  }

  /** A `float` field (fixed 32-bit little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WireType.Fixed32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.pushBytes(bytes);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.LengthDelimited);
    this.rawVarint(value.length);
    this.pushBytes(value);
    return this;
  }

  /** A nested message; a writer's chunks are taken as they are, so a 100 MB tensor is copied once, by the outermost finish(). */
  message(field: number, encoded: ProtoWriter | Uint8Array): this {
    if (!(encoded instanceof ProtoWriter)) return this.bytes(field, encoded);
    encoded.flushPending();
    this.tag(field, WireType.LengthDelimited);
    this.rawVarint(encoded.length);
    this.flushPending();
    for (const c of encoded.chunks) this.chunks.push(c);
    this.length += encoded.length;
    return this;
  }

  /** One tag per element: the canonical proto2 form of an unpacked `repeated int64`, as onnx.proto declares them. */
  repeatedVarint(field: number, values: readonly (number | bigint)[]): this {
    for (const v of values) this.varint(field, v);
    return this;
  }

  finish(): Uint8Array {
    this.flushPending();
    if (this.chunks.length === 1) return this.chunks[0];
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  private tag(field: number, wire: WireType): void {
    if (!Number.isInteger(field) || field < 1) throw new RangeError(`protobuf field number must be a positive integer, got ${field}`);
    this.rawVarint(field * 8 + wire);
  }

  private rawVarint(value: number | bigint): void {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf varint must be a safe integer, got ${value}`);
      if (value < 0) return this.rawVarint(BigInt(value));
      // Division rather than >>>: values of 2^32 and more must survive.
      while (value >= 0x80) {
        this.pending.push((value % 0x80) | 0x80);
        value = Math.floor(value / 0x80);
      }
      this.pending.push(value);
      return;
    }
    let v = value < 0n ? value + TWO_POW_64 : value;
    if (v < 0n || v >= TWO_POW_64) throw new RangeError(`protobuf varint out of 64-bit range: ${value}`);
    while (v >= 0x80n) {
      this.pending.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.pending.push(Number(v));
  }

  private pushBytes(bytes: Uint8Array): void {
    this.flushPending();
    this.chunks.push(bytes);
    this.length += bytes.length;
  }

  private flushPending(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.length += this.pending.length;
    this.pending = [];
  }
}
