#!/bin/bash
# (round 16, bench/logs/ciC-times.md) results go to /tmp/ciC-ab/results; A: a copy of the test file as on main
# ab.sh LABEL FILE: fresh cache and compile log, CPU seconds of one vitest file
L=$1; F=$2; D=/tmp/ciC-ab/$L; rm -rf $D; mkdir -p $D/cache $D/log
cd /work/wt-ciC
NINCC_CACHE_DIR=$D/cache NINCC_COMPILE_LOG=$D/log /usr/bin/time -f '%e wall %U+%S cpu' -o $D/time nice -n 5 npx vitest run $F > $D/out 2>&1
echo "$L $F $(cat $D/time | tail -1) $(node dist/scripts/compile-log-summary.js $D/log 2>&1 | tr '\n' ' ')" >> /tmp/ciC-ab/results
