// The Torch7 reader: every fixture in test/data/t7 (real Torch7 files) with the values its README states,
// then files from the test writer for every type tag, storage type, sharing and view, and exact errors.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readT7, readT7File, T7FormatError } from '../runtime/t7/reader.js';
import { T7Function, T7Object, T7Storage, T7Table, T7Tensor, type T7Value } from '../runtime/t7/values.js';
import { root } from './cli-run.js';
import { floatTensor, list, luaFunction, object, storage, table, tensor, writeT7 } from './t7/writer.js';

const fixture = (name: string) => readT7File(`${root}test/data/t7/${name}`);
const sameFloats = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((x, i) => x === b[i]);
const scratch = mkdtempSync(join(tmpdir(), 'nincc-t7-reader-'));

function as<T>(v: T7Value | undefined, ctor: new (...a: never[]) => T): T {
  expect(v).toBeInstanceOf(ctor);
  return v as T;
}

describe('Torch7 fixtures (test/data/t7)', () => {
  it('hello=123.t7 is {hello = 123}', () => {
    const t = as(fixture('hello=123.t7'), T7Table);
    expect([...t.entries]).toEqual([['hello', 123]]);
  });

  it('list_table.t7 is {"hello", "world", "third item", 123}', () => {
    const t = as(fixture('list_table.t7'), T7Table);
    expect(t.list()).toEqual(['hello', 'world', 'third item', 123]);
    expect(t.size).toBe(4);
  });

  it('map_table1.t7 and map_table2.t7 have key 0, a list part and the string key a', () => {
    const t1 = as(fixture('map_table1.t7'), T7Table);
    expect(t1.get(0)).toBe('zero');
    expect(t1.list()).toEqual(['hello', 'world', 'third item', 123]);
    const t2 = as(fixture('map_table2.t7'), T7Table);
    expect(t2.list()).toEqual(['hello', 'world', 'third item', 123]);
    expect(t2.get('a')).toBe('non number key');
  });

  it('doubletensor.t7 is the DoubleTensor [[1,2,3],[4,5,6.9]]', () => {
    const t = as(fixture('doubletensor.t7'), T7Tensor);
    expect(t.className).toBe('torch.DoubleTensor');
    expect(t.dtype).toBe('float64');
    expect(t.sizes).toEqual([2, 3]);
    expect(t.toNumbers()).toEqual([1, 2, 3, 4, 5, 6.9]);
  });

  it('floattensor.t7 is a 2x3x4 FloatTensor whose elements sum to 12.97241666913', () => {
    const t = as(fixture('floattensor.t7'), T7Tensor);
    expect(t.className).toBe('torch.FloatTensor');
    expect(t.sizes).toEqual([2, 3, 4]);
    expect(t.strides).toEqual([12, 4, 1]);
    expect(Math.abs(t.toNumbers().reduce((a, b) => a + b, 0) - 12.97241666913)).toBeLessThan(1e-5);
  });

  it('custom_class.t7 is an object of class Blah; recursive_class.t7 an A whose field a is itself', () => {
    const blah = as(fixture('custom_class.t7'), T7Object);
    expect([blah.className, blah.version, blah.fields.size]).toEqual(['Blah', 1, 0]);
    const a = as(fixture('recursive_class.t7'), T7Object);
    expect(a.className).toBe('A');
    expect(a.get('a')).toBe(a);
  });

  it('recursive_kv_table.t7 has one entry whose key and value are the table itself', () => {
    const t = as(fixture('recursive_kv_table.t7'), T7Table);
    expect([...t.entries]).toEqual([[t, t]]);
    expect([...t.entries][0][0]).toBe(t);
  });

  it('function.t7 and function_upvals.t7 are Lua functions kept as bytecode; the second has upvalue asdf = 123', () => {
    const f = as(fixture('function.t7'), T7Function);
    expect(f.tag).toBe(8);
    expect(f.bytecodeLength).toBe(218);
    expect(Buffer.from(f.bytecode.subarray(0, 3)).toString('latin1')).toBe('\x1bLJ'); // a LuaJIT dump
    expect(as(f.upvalues, T7Table).size).toBe(0);
    const g = as(fixture('function_upvals.t7'), T7Function);
    expect(g.bytecodeLength).toBe(89);
    const up = as(as(g.upvalues, T7Table).get(1), T7Table);
    expect([up.get('name'), up.get('value')]).toEqual(['asdf', 123]);
  });

  it('nngraph_node.t7 is an nngraph.Node; gmodule_with_linear_identity.t7 holds a Double nn.Linear, two nn.Identity, nn.CAddTable', () => {
    expect(as(fixture('nngraph_node.t7'), T7Object).className).toBe('nngraph.Node');
    const g = as(fixture('gmodule_with_linear_identity.t7'), T7Object);
    expect(g.className).toBe('nn.gModule');
    const modules = as(g.get('modules'), T7Table).list().map((m) => as(m, T7Object));
    expect(modules.map((m) => m.className).sort()).toEqual(['nn.CAddTable', 'nn.Identity', 'nn.Identity', 'nn.Linear']);
    const linear = modules.find((m) => m.className === 'nn.Linear')!;
    expect(as(linear.get('weight'), T7Tensor).className).toBe('torch.DoubleTensor');
    // The graph's nodes refer to the same module objects as the modules list (back-references).
    const nodes = as(g.get('forwardnodes'), T7Table).list().map((n) => as(n, T7Object));
    const nodeModules = nodes.map((n) => as(n.get('data'), T7Table).get('module')).filter((m) => m !== undefined);
    expect(nodeModules).toContain(linear);
  });

  it('tds_hash.t7 is a tds.Hash of 3 entries with [1]=2 and [10]=11; tds_vec.t7 a tds.Vec {123, 456} of version 0', () => {
    const h = as(fixture('tds_hash.t7'), T7Object);
    expect(h.className).toBe('tds.Hash');
    expect(h.fields.size).toBe(3);
    expect([h.get(1), h.get(10)]).toEqual([2, 11]);
    const v = as(fixture('tds_vec.t7'), T7Object);
    expect([v.className, v.version]).toEqual(['tds.Vec', 0]);
    expect(v.fields.list()).toEqual([123, 456]);
  });

  it('linear_net.t7 is a Float nn.Linear(3 -> 2) with weight [[0,1,0],[0,0,1]] and bias [10,10]; linear_x/y are [1,2,3] and [12,13]', () => {
    const net = as(fixture('linear_net.t7'), T7Object);
    expect(net.className).toBe('nn.Linear');
    const w = as(net.get('weight'), T7Tensor);
    expect([w.className, w.sizes]).toEqual(['torch.FloatTensor', [2, 3]]);
    expect(Array.from(w.toFloat32())).toEqual([0, 1, 0, 0, 0, 1]);
    expect(as(net.get('bias'), T7Tensor).toNumbers()).toEqual([10, 10]);
    expect(as(fixture('linear_x.t7'), T7Tensor).toNumbers()).toEqual([1, 2, 3]);
    expect(as(fixture('linear_y.t7'), T7Tensor).toNumbers()).toEqual([12, 13]);
  });

  it('reads every fixture alike from a file and from memory', () => {
    for (const name of ['doubletensor.t7', 'map_table2.t7', 'tds_hash.t7']) {
      const bytes = readFileSync(`${root}test/data/t7/${name}`);
      expect(readT7(bytes, name)).toEqual(fixture(name));
    }
  });
});

describe('files from the test writer', () => {
  const roundTrip = (v: T7Value, longSize: 4 | 8 = 8) => {
    const file = join(scratch, 'round-trip.t7');
    writeFileSync(file, writeT7(v, { longSize }));
    return readT7File(file, { longSize });
  };

  it('reads nil, numbers, strings, booleans and nested tables', () => {
    const v = table([[1, 'one'], [2.5, -0.125], ['flag', true], ['off', false], [true, 'boolean key'], ['nested', table({ deep: list([1, 2, 3]) })]]);
    const back = as(roundTrip(v), T7Table);
    expect(back).toEqual(v);
    expect(roundTrip(null)).toBe(null);
    expect(roundTrip('é ünïcode')).toBe('é ünïcode');
  });

  it('reads tensors of every storage type, CudaTensor as float32', () => {
    const cases = [
      storage('float64', Float64Array.from([1.5, -2])),
      storage('float32', Float32Array.from([1.5, -2])),
      storage('float16', Uint16Array.from([0x3e00, 0xc000])), // 1.5, -2
      storage('int64', BigInt64Array.from([3n, -4n])),
      storage('int32', Int32Array.from([3, -4])),
      storage('int16', Int16Array.from([3, -4])),
      storage('int8', Int8Array.from([3, -4])),
      storage('uint8', Uint8Array.from([3, 252])),
      storage('float32', Float32Array.from([1.5, -2]), true),
    ];
    const expected = [[1.5, -2], [1.5, -2], [1.5, -2], [3, -4], [3, -4], [3, -4], [3, -4], [3, 252], [1.5, -2]];
    const back = as(roundTrip(list(cases.map((s) => tensor(s, [2])))), T7Table).list().map((t) => as(t, T7Tensor));
    expect(back.map((t) => t.className)).toEqual([
      'torch.DoubleTensor', 'torch.FloatTensor', 'torch.HalfTensor', 'torch.LongTensor', 'torch.IntTensor', 'torch.ShortTensor', 'torch.CharTensor', 'torch.ByteTensor', 'torch.CudaTensor',
    ]);
    expect(back.map((t) => t.toNumbers())).toEqual(expected);
    expect(back[8].dtype).toBe('float32');
  });

  it('keeps a shared storage shared and honours sizes, strides and offsets (views materialised on demand)', () => {
    const s = storage('float32', Float32Array.from({ length: 24 }, (_, i) => i));
    const whole = tensor(s, [4, 6]);
    const transposedView = tensor(s, [6, 4], { strides: [1, 6] });
    const block = tensor(s, [2, 2], { strides: [6, 2], offset: 7 }); // rows 1-2, every other column from 1
    const [a, b, c] = as(roundTrip(list([whole, transposedView, block])), T7Table).list().map((t) => as(t, T7Tensor));
    expect(a.storage).toBe(b.storage);
    expect(b.storage).toBe(c.storage);
    expect(a.isContiguous()).toBe(true);
    expect(b.isContiguous()).toBe(false);
    expect(a.toFloat32().buffer).toBe(a.storage!.data.buffer); // contiguous float32: a view, no copy
    expect(Array.from(b.toFloat32().subarray(0, 8))).toEqual([0, 6, 12, 18, 1, 7, 13, 19]);
    expect(Array.from(c.toFloat32())).toEqual([7, 9, 13, 15]);
  });

  it('keeps tensor data as a view of the input bytes when aligned (readT7) and reads a file larger than its window', () => {
    const big = Float32Array.from({ length: 100_000 }, (_, i) => i * 0.5);
    const v = list([floatTensor(big, [100_000]), table(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key${i}`, i])))]);
    const bytes = writeT7(v);
    const fromFile = as(roundTrip(v), T7Table);
    expect(sameFloats(as(fromFile.get(1), T7Tensor).toFloat32(), big)).toBe(true);
    expect(as(fromFile.get(2), T7Table).get('key4999')).toBe(4999);
    // In memory, a storage whose data starts on a 4-byte boundary is a view of the input; otherwise one copy.
    const dataAt = Buffer.from(bytes).indexOf(Buffer.from(big.buffer, 0, 16));
    const holder = new Uint8Array(bytes.length + 4);
    for (const shift of [0, 1, 2, 3]) {
      const input = holder.subarray(shift, shift + bytes.length);
      input.set(bytes);
      const t = as(as(readT7(input, 'mem.t7'), T7Table).get(1), T7Tensor);
      expect(sameFloats(t.toFloat32(), big)).toBe(true);
      expect(t.storage!.data.buffer === holder.buffer).toBe((shift + dataAt) % 4 === 0);
    }
  });

  it('reads torch objects of any class, unversioned (version 0) objects and 4-byte longs', () => {
    const obj = object('my.Thing', { a: 1 }, 3);
    const old = object('nn.Old', { b: 2 }, 0);
    const back = as(roundTrip(list([obj, old, tensor(storage('int32', Int32Array.from([5, 6, 7])), [3])]), 4), T7Table).list();
    expect(as(back[0], T7Object)).toMatchObject({ className: 'my.Thing', version: 3 });
    expect(as(back[1], T7Object)).toMatchObject({ className: 'nn.Old', version: 0 });
    expect(as(back[1], T7Object).get('b')).toBe(2);
    expect(as(back[2], T7Tensor).toNumbers()).toEqual([5, 6, 7]);
  });

  it('steps over functions of tags 6, 7 and 8, with upvalues that refer back to the function', () => {
    const self = luaFunction(null, 8);
    self.upvalues = list([table({ name: 'self', value: self })]);
    const legacy = luaFunction(null, 7);
    legacy.upvalues = list([legacy, 42]);
    const plain = luaFunction(list([table({ name: 'x', value: 'y' })]), 6);
    const back = as(roundTrip(table({ self, legacy, plain, after: 'still read' })), T7Table);
    const f = as(back.get('self'), T7Function);
    expect(as(as(f.upvalues, T7Table).get(1), T7Table).get('value')).toBe(f);
    const g = as(back.get('legacy'), T7Function);
    expect([g.tag, as(g.upvalues, T7Table).get(1), as(g.upvalues, T7Table).get(2)]).toEqual([7, g, 42]);
    expect(as(back.get('plain'), T7Function).tag).toBe(6);
    expect(back.get('after')).toBe('still read');
  });

  it('reads tds.Hash and tds.Vec', () => {
    const hash = new T7Object('tds.Hash', 0, table([['x', 1], [7, list([1])]]));
    const vec = new T7Object('tds.Vec', 0, list(['a', 'b']));
    const [h, v] = as(roundTrip(list([hash, vec])), T7Table).list().map((o) => as(o, T7Object));
    expect(h.get('x')).toBe(1);
    expect(as(h.get(7), T7Table).list()).toEqual([1]);
    expect(v.fields.list()).toEqual(['a', 'b']);
  });
});

describe('truncated and corrupt files fail with the byte offset and the field path', () => {
  // {model = nn.Sequential{ReLU, ReLU, Linear}}: the Linear's weight storage is found by its data.
  const weights = Float32Array.from([0.25, 0.5, 0.75, 1.25, 1.5, 1.75]);
  const net = table({
    model: object('nn.Sequential', {
      modules: list([object('nn.ReLU', {}), object('nn.ReLU', {}), object('nn.Linear', { weight: tensor(storage('float32', weights), [2, 3]), marker: 'CORRUPT_ME' })]),
    }),
  });
  const bytes = writeT7(net);
  const dataAt = Buffer.from(bytes).indexOf(Buffer.from(weights.buffer));
  const save = (name: string, b: Uint8Array) => {
    const file = join(scratch, name);
    writeFileSync(file, b);
    return file;
  };
  const failure = (file: string) => {
    try {
      readT7File(file);
    } catch (e) {
      expect(e).toBeInstanceOf(T7FormatError);
      return e as T7FormatError;
    }
    throw new Error(`${file} was read without error`);
  };

  it('in the storage length: names the bytes it needed and those left', () => {
    const lengthAt = dataAt - 8;
    const file = save('cut-length.t7', bytes.subarray(0, lengthAt + 2));
    const e = failure(file);
    expect(e.message).toBe(`${file}: truncated at byte ${lengthAt} while reading model.modules[3].weight.storage (needs 8 bytes, 2 left)`);
    expect([e.offset, e.fieldPath]).toEqual([lengthAt, 'model.modules[3].weight.storage']);
  });

  it('in the storage data', () => {
    const file = save('cut-data.t7', bytes.subarray(0, dataAt + 5));
    expect(failure(file).message).toBe(`${file}: truncated at byte ${dataAt} while reading model.modules[3].weight.storage (needs 24 bytes, 5 left)`);
  });

  it('in a type tag, and at the very start', () => {
    const file = save('cut-tag.t7', bytes.subarray(0, 2));
    expect(failure(file).message).toBe(`${file}: truncated at byte 0 while reading the top-level object (needs 4 bytes, 2 left)`);
  });

  it('a corrupt type tag', () => {
    const stringAt = Buffer.from(bytes).indexOf(Buffer.from('CORRUPT_ME'));
    const tagAt = stringAt - 8; // int32 tag, int32 length, then the characters
    const corrupt = Uint8Array.from(bytes);
    new DataView(corrupt.buffer).setInt32(tagAt, 17, true);
    const file = save('bad-tag.t7', corrupt);
    expect(failure(file).message).toBe(`${file}: unknown type tag 17 at byte ${tagAt} while reading model.modules[3].marker (corrupt file, or not a Torch7 binary file)`);
  });

  it('a tensor that reaches past its storage', () => {
    const bad = writeT7(table({ t: tensor(storage('float32', new Float32Array(4)), [2, 3]) }));
    const e = (() => {
      try {
        readT7(bad, 'view.t7');
      } catch (err) {
        return err as Error;
      }
    })();
    // The tensor's payload starts at byte 57: table header 12, key 't' 9, tag and index 8, 'V 1' 7, the class name 21.
    expect(e?.message).toBe('view.t7: torch.FloatTensor 2x3 (strides 3,1, offset 1) at byte 57 reaches element 6 of a storage of 4 while reading t');
  });

  it('a negative string length', () => {
    const b = Uint8Array.from(writeT7('abc'));
    new DataView(b.buffer).setInt32(4, -3, true);
    expect(() => readT7(b, 's.t7')).toThrow('s.t7: negative string length -3 at byte 4 while reading the top-level object');
  });
});
