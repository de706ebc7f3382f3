#!/usr/bin/env bash
# ciB: how many of a CI run's kernel-library compiles the source-hash-free cache key would have shared
# (bench/logs/ciB-times.md). Reads a finished run's cache folder (NINCC_CACHE_DIR, e.g. /tmp/ci-cache): one
# library per compile; strips symbol tables and build-ids, blanks the 64-hex source hash, and groups equal bytes.
#   bash bench/logs/ciB-ci-cache-count.sh /tmp/ci-cache
set -euo pipefail
cache=$1; work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for kind in cpu emu; do
  for f in "$cache/$kind"/*.so; do objcopy --strip-all --remove-section .note.gnu.build-id "$f" "$work/$kind-$(basename "$f")"; done
done
python3 - "$work" <<'PY'
import collections, hashlib, os, re, sys
work = sys.argv[1]
for kind in ['cpu', 'emu']:
    groups = collections.defaultdict(list)
    for f in sorted(x for x in os.listdir(work) if x.startswith(kind + '-')):
        d = open(os.path.join(work, f), 'rb').read()
        for h in set(re.findall(rb'[0-9a-f]{64}', d)): d = d.replace(h, b'H' * 64)
        groups[hashlib.sha256(d).hexdigest()].append(os.path.getsize(os.path.join(work, f)))
    n = sum(len(v) for v in groups.values()); dup = sum(sum(v[1:]) for v in groups.values()); total = sum(sum(v) for v in groups.values())
    print(f'{kind}: {n} libraries compiled, {len(groups)} distinct with the source hash aside; the others are {100 * dup / total:.0f}% of the stripped bytes')
PY
