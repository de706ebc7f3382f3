// Checking a packed dataset end to end (`nincc pack --verify`): every shard's sha256 against the index and
// every record's framing and CRC-32, so a corrupt shard is named with the byte offset of its first bad record.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { corruptRecord, RECORD_HEADER_BYTES, readPackIndex, readRecord, recordProblem, SPLITS, type PackIndex } from './pack-format.js';

const CHUNK = 4 << 20;

/** sha256 and length of a file, read in large sequential chunks. */
export function shardSha256(path: string): { bytes: number; sha256: string } {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, 'r');
  let bytes = 0;
  try {
    for (let n = readSync(fd, buf, 0, CHUNK, bytes); n > 0; n = readSync(fd, buf, 0, CHUNK, bytes)) {
      hash.update(buf.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { bytes, sha256: hash.digest('hex') };
}

export interface VerifyReport {
  readonly index: PackIndex;
  readonly problems: readonly string[]; // one line per bad shard, naming the file (and the first bad record's offset)
  readonly records: number;
  readonly bytes: number;
}

/** Reads DIR's index (its errors throw) and then every byte of every shard. */
export function verifyPackedDataset(dir: string, onShard?: (done: number, total: number) => void): VerifyReport {
  const index = readPackIndex(dir);
  const problems: string[] = [];
  let records = 0;
  let bytes = 0;
  let scratch = Buffer.allocUnsafe(1 << 16);
  index.shards.forEach((s, place) => {
    const path = join(dir, s.file);
    const whole = shardSha256(path);
    bytes += whole.bytes;
    const sumBad = whole.sha256 !== s.sha256;
    // The records say where the damage is; the sha256 alone only says that there is some.
    let firstBad: string | undefined;
    const fd = openSync(path, 'r');
    try {
      for (const split of SPLITS) {
        const t = index.splits[split];
        for (let k = 0; k < t.shard.length && firstBad === undefined; k++) {
          if (t.shard[k] !== place) continue;
          if (scratch.length < RECORD_HEADER_BYTES + t.length[k]) scratch = Buffer.allocUnsafe(RECORD_HEADER_BYTES + t.length[k]);
          const rec = readRecord(fd, t.offset[k], t.length[k], scratch);
          const why = recordProblem(rec, t.length[k], t.width[k], t.height[k]);
          if (why) firstBad = corruptRecord(path, t.offset[k], `${why} (${split}/${t.name[k]})`);
          records++;
        }
      }
    } finally {
      closeSync(fd);
    }
    if (firstBad) problems.push(firstBad);
    else if (sumBad) problems.push(`${path}: sha256 ${whole.sha256} differs from the index's ${s.sha256}, though every record reads back whole (bytes between records changed)`);
    onShard?.(place + 1, index.shards.length);
  });
  return { index, problems, records, bytes };
}
