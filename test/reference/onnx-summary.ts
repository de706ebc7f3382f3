// A minimal protobuf reader, independent of runtime/onnx's writer, to look inside exported `.onnx` files:
// the opset, the IR version, the node types in order, the initializers' names, the graph's input and output.
import { readFileSync } from 'node:fs';

type Field = { field: number; varint?: bigint; bytes?: Uint8Array };

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = () => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[at++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (at < buf.length) {
    const tag = Number(varint());
    const wire = tag & 7;
    if (wire === 0) out.push({ field: tag >> 3, varint: varint() });
    else if (wire === 2) {
      const n = Number(varint());
      out.push({ field: tag >> 3, bytes: buf.subarray(at, at + n) });
      at += n;
    } else if (wire === 5) at += 4;
    else if (wire === 1) at += 8;
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}
const text = (f: Field) => new TextDecoder().decode(f.bytes);
const sub = (fs: Field[], n: number) => fs.filter((f) => f.field === n).map((f) => fields(f.bytes!));

export interface OnnxSummary { irVersion: number; opset: number; ops: string[]; initializers: string[]; input: { name: string; dims: (number | string)[] }; output: string }

export function summarise(file: string): OnnxSummary {
  const model = fields(readFileSync(file));
  const graph = sub(model, 7)[0];
  const [input] = sub(graph, 11);
  const shape = sub(sub(sub(input, 2)[0], 1)[0], 2)[0];
  return {
    irVersion: Number(model.find((f) => f.field === 1)!.varint),
    opset: Number(sub(model, 8)[0].find((f) => f.field === 2)!.varint),
    ops: sub(graph, 1).map((n) => text(n.find((f) => f.field === 4)!)),
    initializers: sub(graph, 5).map((t) => text(t.find((f) => f.field === 8)!)),
    input: {
      name: text(input.find((f) => f.field === 1)!),
      dims: sub(shape, 1).map((d) => (d[0].field === 1 ? Number(d[0].varint) : text(d[0]))),
    },
    output: text(sub(graph, 12)[0].find((f) => f.field === 1)!),
  };
}

/** How many nodes of each type, e.g. { Conv: 20, Add: 8 }. */
export const opCounts = (s: OnnxSummary): Record<string, number> => s.ops.reduce<Record<string, number>>((c, op) => ({ ...c, [op]: (c[op] ?? 0) + 1 }), {});
