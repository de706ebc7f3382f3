#!/bin/bash
# (round 17, bench/logs/ciD-times.md) A: main as a `git archive` at /tmp/ciD-main (node_modules linked, its own tsc); B: /work/wt-ciD.
# build-ab.sh SPEC...: `nincc build SPEC --target cpu --max-batch 4` with main's tree (A, /tmp/ciD-main) and this branch
# (B, /work/wt-ciD), side by side, each into a fresh cache and compile log; CPU seconds of the build and of g++ alone.
R=/tmp/ciD/ab; mkdir -p $R
for spec in "$@"; do
  name=$(basename $spec .model)
  for L in A B; do
    tree=/work/wt-ciD; [[ $L == A ]] && tree=/tmp/ciD-main
    D=$R/$L-$name; rm -rf $D; mkdir -p $D/cache $D/log
    ( cd $tree && NINCC_CACHE_DIR=$D/cache NINCC_COMPILE_LOG=$D/log NINCC_NVCC=0 /usr/bin/time -f '%e wall %U+%S cpu' -o $D/time \
        nice -n 5 node bin/nincc build $spec --target cpu --max-batch 4 -o $D/out > $D/stdout 2> $D/stderr
      echo "$L $name: $(tail -1 $D/time); g++ $(node -e 'const l=require("fs").readFileSync(process.argv[1],"utf8").trim().split("\n").map(JSON.parse); console.log(l.map(r=>`${r.kind} ${r.cached?"hit":r.cpuSeconds.toFixed(1)+" CPU s"}`).join(", "))' $D/log/compiles.jsonl); .so $(stat -c %s $D/out/kernels.cpu.so) B" | tee -a $R/results ) &
  done
  wait
done
