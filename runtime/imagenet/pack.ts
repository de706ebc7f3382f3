// `nincc pack`'s work: an ImageNet folder written once into shard files of re-encoded JPEG records and an
// index (pack-format.ts). Resumable: each shard is written under a temporary name and renamed when whole,
// with a small record list beside it; a rerun verifies the finished shards and continues after the last.
// The index is written last, so a dataset with an index is a finished one.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { sharp } from '../sharp.js';
import { writeFileAtomicSync } from '../io/atomic-write.js';
import { DataLayoutError, openImageNetFolder, type ImageList } from './folder.js';
import { packImage, type PackedImage } from './pack-encode.js';
import { emptyTable, encodeRecordHeader, INDEX_FILE, PACK_FORMAT, PACK_VERSION, SPLITS, type PackIndex, type RecordTable, type ShardEntry, type SkippedSource, type Split } from './pack-format.js';
import { shardSha256 } from './pack-verify.js';

export interface PackOptions {
  readonly imageSize: number;
  readonly quality: number;
  readonly shardBytes: number; // a shard is closed once it holds this many bytes
  readonly concurrency: number; // images encoded at once
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PackSummary {
  readonly images: Record<Split, number>;
  readonly skipped: readonly SkippedSource[];
  readonly kept: number; // JPEGs stored as they were
  readonly warnings: number; // damaged sources decoded past
  readonly bytes: number;
  readonly shards: number;
  readonly resumedShards: number; // finished by an earlier run and verified
}

/** What a rerun must agree with to continue an unfinished pack. */
interface PackState {
  readonly source: string;
  readonly imageSize: number;
  readonly quality: number;
  readonly shardBytes: number;
  readonly files: Record<Split, number>;
}

/** The record list beside a finished shard: its images first..end−1 of the split, their records and the skips among them. */
interface ShardSidecar extends ShardEntry {
  readonly first: number;
  readonly end: number;
  readonly records: RecordTable;
  readonly skipped: readonly SkippedSource[];
  readonly kept: number;
  readonly warnings: number;
}

const STATE_FILE = 'pack-state.json';

/**
 * NINCC_PACK_SIGNAL=SIGKILL@N (or SIGINT@N): the process signals itself right after the Nth record this run
 * writes in a split, so tests interrupt a pack at a known place: finished shards behind it, one half written.
 */
export const PACK_SIGNAL_ENV = 'NINCC_PACK_SIGNAL';
const injectedSignal = ((): ((records: number) => void) | undefined => {
  const v = process.env[PACK_SIGNAL_ENV];
  if (!v) return undefined;
  const m = /^(SIGKILL|SIGINT)@(\d+)$/.exec(v);
  if (!m) throw new Error(`${PACK_SIGNAL_ENV}=${v}: expected SIGKILL@N or SIGINT@N`);
  const [, signal, at] = m;
  return (records) => {
    if (records === Number(at)) process.kill(process.pid, signal);
  };
})();
const shardName = (split: Split, k: number) => `${split}-${String(k).padStart(5, '0')}.shard`;
const sidecarName = (split: Split, k: number) => `${shardName(split, k)}.json`;
const tempName = (file: string) => `${file}.partial`;

/** Appends records to FILE.partial, hashing as it goes; finish() makes it FILE. */
class ShardWriter {
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  bytes = 0;

  constructor(readonly path: string) {
    this.fd = openSync(tempName(path), 'w', 0o644);
  }

  append(chunk: Uint8Array): void {
    for (let w = 0; w < chunk.length; ) w += writeSync(this.fd, chunk, w, chunk.length - w);
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  finish(): { bytes: number; sha256: string } {
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(tempName(this.path), this.path);
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

function checkState(out: string, want: PackState): void {
  const path = join(out, STATE_FILE);
  if (existsSync(path)) {
    const had = JSON.parse(readFileSync(path, 'utf8')) as PackState;
    const differ = (Object.keys(want) as (keyof PackState)[]).filter((k) => JSON.stringify(had[k]) !== JSON.stringify(want[k]));
    if (differ.length > 0) {
      throw new DataLayoutError(`${path}: ${out} holds an unfinished pack with another ${differ.join(', ')} (${differ.map((k) => `${JSON.stringify(had[k])} there, ${JSON.stringify(want[k])} now`).join('; ')}): rerun with the same options or pack into another directory`);
    }
    return;
  }
  const stray = readdirSync(out).filter((f) => !f.startsWith('.'));
  if (stray.length > 0) throw new DataLayoutError(`${out}: not empty (${stray.slice(0, 3).join(', ')}${stray.length > 3 ? ', …' : ''}) and not an unfinished pack: pack into a new or empty directory`);
  writeFileAtomicSync(path, JSON.stringify(want, null, 1) + '\n');
}

/** The split's shards an earlier run finished whose bytes still match; the first bad one and all after it are removed. */
function finishedShards(out: string, split: Split, note: (line: string) => void): ShardSidecar[] {
  const done: ShardSidecar[] = [];
  for (let k = 0; ; k++) {
    const side = join(out, sidecarName(split, k));
    const shard = join(out, shardName(split, k));
    if (!existsSync(side) || !existsSync(shard)) break;
    const s = JSON.parse(readFileSync(side, 'utf8')) as ShardSidecar;
    const actual = shardSha256(shard);
    if (actual.bytes !== s.bytes || actual.sha256 !== s.sha256) {
      note(`${shard}: does not match the checksum recorded when it was written; packing it again`);
      break;
    }
    done.push(s);
  }
  // Everything after the verified prefix, and any half-written shard, is written again.
  for (const f of readdirSync(out)) {
    const m = /^(train|val)-(\d{5})\.shard(\.json|\.partial)?$/.exec(f);
    if (m && m[1] === split && Number(m[2]) >= done.length) rmSync(join(out, f), { force: true });
  }
  return done;
}

/** Encodes files[from..] `concurrency` at a time and hands the results over in file order. */
async function* encodedInOrder(list: ImageList, from: number, o: PackOptions): AsyncGenerator<{ i: number; r: PackedImage }> {
  const ahead: Promise<PackedImage>[] = [];
  let next = from;
  for (let i = from; i < list.files.length; i++) {
    while (next < list.files.length && next - i < o.concurrency) ahead.push(packImage(list.files[next++], o.imageSize, o.quality));
    yield { i, r: await ahead.shift()! };
  }
}

async function packSplit(out: string, split: Split, list: ImageList, o: PackOptions, progress: () => void, note: (line: string) => void): Promise<{ sidecars: ShardSidecar[]; resumed: number }> {
  const sidecars = finishedShards(out, split, note);
  const resumed = sidecars.length;
  const from = sidecars.at(-1)?.end ?? 0;
  for (const s of sidecars) for (let i = s.first; i < s.end; i++) progress();
  let writer: ShardWriter | undefined;
  let written = 0;
  let part = { first: from, records: emptyTable(), skipped: [] as SkippedSource[], kept: 0, warnings: 0 };
  const close = (end: number) => {
    if (!writer) return;
    const k = sidecars.length;
    const { bytes, sha256 } = writer.finish();
    const sidecar: ShardSidecar = { file: shardName(split, k), split, bytes, sha256, first: part.first, end, records: part.records, skipped: part.skipped, kept: part.kept, warnings: part.warnings };
    writeFileAtomicSync(join(out, sidecarName(split, k)), JSON.stringify(sidecar));
    sidecars.push(sidecar);
    writer = undefined;
    part = { first: end, records: emptyTable(), skipped: [], kept: 0, warnings: 0 };
  };
  for await (const { i, r } of encodedInOrder(list, from, o)) {
    progress();
    const name = list.files[i].slice(list.dir.length + 1);
    if (!r.ok) {
      part.skipped.push({ path: list.files[i], reason: r.reason });
      continue;
    }
    writer ??= new ShardWriter(join(out, shardName(split, sidecars.length)));
    const t = part.records;
    t.shard.push(-1); // the shard's place in the index is known only when the index is assembled
    t.offset.push(writer.bytes);
    t.length.push(r.bytes.length);
    t.label.push(list.labels[i]);
    t.width.push(r.width);
    t.height.push(r.height);
    t.name.push(name);
    if (r.kept) part.kept++;
    if (r.warning) part.warnings++;
    writer.append(encodeRecordHeader(r.bytes, r.width, r.height));
    writer.append(r.bytes);
    injectedSignal?.(++written);
    if (writer.bytes >= o.shardBytes) close(i + 1);
  }
  if (writer) close(list.files.length);
  else if (part.skipped.length > 0) {
    // Trailing unreadable files after the last shard: an empty shard would be noise, so they join the last sidecar's skips.
    const last = sidecars.at(-1);
    if (last) sidecars[sidecars.length - 1] = { ...last, end: list.files.length, skipped: [...last.skipped, ...part.skipped] };
  }
  if (!sidecars.some((s) => s.records.name.length > 0)) throw new DataLayoutError(`${list.dir}: none of its ${list.files.length} images could be read (${part.skipped[0]?.reason ?? 'no images'})`);
  return { sidecars, resumed };
}

/** Joins the shards' record lists into the index: shard numbers become places in the index's shard list. */
function assembleIndex(root: string, classes: readonly string[], o: PackOptions, bySplit: Record<Split, ShardSidecar[]>): PackIndex {
  const shards: ShardEntry[] = [];
  const splits = {} as Record<Split, PackIndex['splits'][Split]>;
  for (const split of SPLITS) {
    const t = emptyTable();
    const skipped: SkippedSource[] = [];
    for (const s of bySplit[split]) {
      const place = shards.length;
      shards.push({ file: s.file, split, bytes: s.bytes, sha256: s.sha256 });
      for (let k = 0; k < s.records.name.length; k++) {
        t.shard.push(place);
        t.offset.push(s.records.offset[k]);
        t.length.push(s.records.length[k]);
        t.label.push(s.records.label[k]);
        t.width.push(s.records.width[k]);
        t.height.push(s.records.height[k]);
        t.name.push(s.records.name[k]);
      }
      skipped.push(...s.skipped);
    }
    splits[split] = { ...t, skipped };
  }
  return { format: PACK_FORMAT, version: PACK_VERSION, imageSize: o.imageSize, quality: o.quality, source: root, classes, shards, splits };
}

/** Packs ROOT (train/ and val/) into OUT; `note` receives resume and skip lines for stderr. */
export async function packImageNet(root: string, out: string, o: PackOptions, note: (line: string) => void = () => {}): Promise<PackSummary> {
  const folder = openImageNetFolder(root);
  if (existsSync(join(out, INDEX_FILE))) throw new DataLayoutError(`${join(out, INDEX_FILE)}: ${out} is already a finished packed dataset (check it with 'nincc pack --verify ${out}')`);
  mkdirSync(out, { recursive: true });
  const lists: Record<Split, ImageList> = { train: folder.train, val: folder.val };
  checkState(out, { source: resolve(root), imageSize: o.imageSize, quality: o.quality, shardBytes: o.shardBytes, files: { train: lists.train.files.length, val: lists.val.files.length } });
  // One libvips thread per image: the parallelism is `concurrency` images at once.
  sharp().concurrency(1);
  const total = lists.train.files.length + lists.val.files.length;
  let done = 0;
  const progress = () => o.onProgress?.(++done, total);
  const bySplit = {} as Record<Split, ShardSidecar[]>;
  let resumedShards = 0;
  for (const split of SPLITS) {
    const r = await packSplit(out, split, lists[split], o, progress, note);
    bySplit[split] = r.sidecars;
    resumedShards += r.resumed;
  }
  const index = assembleIndex(resolve(root), folder.train.classes, o, bySplit);
  writeFileAtomicSync(join(out, INDEX_FILE), JSON.stringify(index));
  for (const split of SPLITS) bySplit[split].forEach((_, k) => rmSync(join(out, sidecarName(split, k)), { force: true }));
  rmSync(join(out, STATE_FILE), { force: true });
  const all = [...bySplit.train, ...bySplit.val];
  return {
    images: { train: index.splits.train.name.length, val: index.splits.val.name.length },
    skipped: [...index.splits.train.skipped, ...index.splits.val.skipped],
    kept: all.reduce((n, s) => n + s.kept, 0),
    warnings: all.reduce((n, s) => n + s.warnings, 0),
    bytes: all.reduce((n, s) => n + s.bytes, 0),
    shards: all.length,
    resumedShards,
  };
}
