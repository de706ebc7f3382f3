#!/usr/bin/env bash
# A/B of a CPU kernel-header change on nin-fashion's layers and NIN's 1x1s: builds bench/cpu/layer-times.cc against
# the headers of git revision BASE (A) and of the working tree (B) and times them call by call,
# alternately, in one process (bench/cpu/layer-ab.cc), with `uptime` before and after.
#   bash bench/cpu/layer-ab.sh BASE [BATCH=16] [CALLS=200] [THREADS=1]
# LAYER_AB_RT=1 runs the timed process under `chrt -f 20` (SCHED_FIFO; root only), so that on a shared
# machine its threads hold the cores while they run (2-thread times then approach an idle machine's).
# LAYER_AB_COLD=1 evicts the caches between calls (bench/cpu/layer-ab.cc).
# LAYER_AB_ONLY=TEXT times only the layers whose names contain TEXT (say maxpool).
set -euo pipefail
base=$1 batch=${2:-16} calls=${3:-200} threads=${4:-1}
root=$(git rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/a"
git -C "$root" archive "$base" runtime/include | tar -x -C "$work/a"
flags=(-std=c++17 -O3 -fopenmp -fPIC -shared -fvisibility=hidden -fvisibility-inlines-hidden -Wl,-Bsymbolic -mavx2 -mfma -mavx512f -mavx512bw -mavx512dq -mavx512vl)
g++ "${flags[@]}" -I "$work/a/runtime/include" "$root/bench/cpu/layer-times.cc" -o "$work/A.so"
g++ "${flags[@]}" -I "$root/runtime/include" "$root/bench/cpu/layer-times.cc" -o "$work/B.so"
g++ -std=c++17 -O2 "$root/bench/cpu/layer-ab.cc" -o "$work/layer-ab" -ldl
echo "${LAYER_AB_ONLY:+layers matching $LAYER_AB_ONLY: }A = $base ($(git -C "$root" rev-parse --short "$base")), B = working tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet -- runtime/include || echo ' + uncommitted header changes')); batch $batch, $calls calls each, OMP_NUM_THREADS=$threads"
uptime
${LAYER_AB_RT:+chrt -f 20} env OMP_NUM_THREADS=$threads "$work/layer-ab" "$work/A.so" "$work/B.so" "$batch" "$calls"
uptime
