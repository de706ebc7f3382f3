#!/usr/bin/env bash
# Training images/s of models/nin-fashion.model on this machine, one process against data-parallel ranks:
# 1 rank × 2 OpenMP threads, then 2 ranks (mpirun) × 1 thread, alternating ROUNDS times, each an
# epoch of LIMIT images at global batch BATCH after a warm-up epoch. Prints the load average before
# and after each run, since the machine may be shared. The ranks yield the core while they wait in a
# collective (mpi_yield_when_idle) instead of spinning on it: on a shared 2-core machine spinning
# takes the core another process needs. Results: bench/RESULTS.md.
#   bash bench/distributed.sh            (needs Open MPI: scripts/install-deps.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
LIMIT=${LIMIT:-2560}
BATCH=${BATCH:-64}
ROUNDS=${ROUNDS:-2}
data=test/data/fashion-mnist-mini
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
node bin/nincc build models/nin-fashion.model -o "$work/artifact" -q
args=(train "$work/artifact" --data "$data" --limit "$LIMIT" --batch "$BATCH" --epochs 2 --no-test -q)
# The second epoch's rate (the first warms caches and pages in the arena).
rate() { node -e 'const l = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse); console.log(l[1].imagesPerSecond.toFixed(1))' "$1/log.jsonl"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
for round in $(seq "$ROUNDS"); do
  before=$(load)
  OMP_NUM_THREADS=2 node bin/nincc "${args[@]}" -o "$work/one-$round" >/dev/null
  echo "round $round: 1 rank x 2 threads: $(rate "$work/one-$round") images/s (load before: $before, after: $(load))"
  before=$(load)
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
    mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np 2 node bin/nincc "${args[@]}" -o "$work/two-$round" >/dev/null
  echo "round $round: 2 ranks x 1 thread: $(rate "$work/two-$round") images/s (load before: $before, after: $(load))"
done
