#!/usr/bin/env bash
# A/B of a nincc process's wall time (start-up included) between two builds of nincc, alternating A and B so a
# loaded machine's load falls on both alike: each ROOT holds bin/nincc and its dist/ (a checkout, or a copy of
# bin/, dist/ and links to node_modules/, compiler/, models/, runtime/). Prints each run and the medians.
#   bash bench/cli-start-ab.sh ROOT_A ROOT_B RUNS -- nincc arguments (relative paths resolve in ROOT_A)
set -euo pipefail
a=$1 b=$2 runs=$3
shift 3
[[ "${1:-}" == -- ]] && shift
cd "$a"
declare -A times
for ((i = 1; i <= runs; i++)); do
  for side in A B; do
    root=$a; [[ $side == B ]] && root=$b
    start=$(date +%s%N)
    node "$root/bin/nincc" "$@" > /dev/null 2>&1 || { echo "$side: nincc $* failed"; exit 1; }
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    times[$side]+="$ms "
  done
done
for side in A B; do
  median=$(tr ' ' '\n' <<< "${times[$side]}" | grep . | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
  echo "$side: ${times[$side]}ms; median $median ms"
done
