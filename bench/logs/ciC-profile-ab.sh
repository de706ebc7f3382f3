#!/bin/bash
# (round 16, bench/logs/ciC-times.md) needs /tmp/ciC-prof/tiny.model: profile-command.test.ts's SPEC
# A: the old `nincc profile SPEC` (a whole emu build, then profile the directory); B: this branch's `nincc profile SPEC`.
N=/work/wt-ciC/bin/nincc
for L in A B; do rm -rf /tmp/ciC-prof/$L; mkdir -p /tmp/ciC-prof/$L/cache /tmp/ciC-prof/$L/log; cp /tmp/ciC-prof/tiny.model /tmp/ciC-prof/$L/; done
export NINCC_NVCC=0
(cd /tmp/ciC-prof/A && NINCC_CACHE_DIR=$PWD/cache NINCC_COMPILE_LOG=$PWD/log /usr/bin/time -f '%e wall %U+%S cpu' -o time nice -n 5 bash -c "$N build tiny.model --target emu --gpu h100 --max-batch 4 -o build/tiny-emu && $N profile build/tiny-emu --batch 4 --json > out.json" 2> err) &
(cd /tmp/ciC-prof/B && NINCC_CACHE_DIR=$PWD/cache NINCC_COMPILE_LOG=$PWD/log /usr/bin/time -f '%e wall %U+%S cpu' -o time nice -n 5 bash -c "$N profile tiny.model --batch 4 --json > out.json" 2> err) &
wait
for L in A B; do echo "$L $(tail -1 /tmp/ciC-prof/$L/time) $(node /work/wt-ciC/dist/scripts/compile-log-summary.js /tmp/ciC-prof/$L/log | tr '\n' ' ')"; done
