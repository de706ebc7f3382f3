#!/usr/bin/env bash
# ciB's check of "one translation unit per kernel" for a generated kernels.cpu.cc (bench/logs/ciB-times.md):
# compiles it whole (as nincc build does) and split (a TU per kernel + the table, linked), prints the g++ CPU
# seconds of each, then compares each exported kernel's instructions (addresses aside) between the two libraries.
#   bash bench/logs/ciB-split-tu.sh path/to/kernels.cpu.cc WORKDIR
set -euo pipefail
src=$1; work=$2; mkdir -p "$work/split"
python3 - "$src" "$work/split" <<'PY'
import re, sys
s = open(sys.argv[1]).read(); out = sys.argv[2]
m = list(re.finditer(r'^// [^\n]*\nNINCC_CPU_EXPORT void (k\w+)\(const NinccArgs\* a\) \{\n.*?^\}\n', s, flags=re.M | re.S))
head = s[:m[0].start()]; cut = head.index('NINCC_CPU_EXPORT const char* nincc_abi')
prelude, abi = head[:cut], head[cut:]
for x in m: open(f'{out}/{x.group(1)}.cc', 'w').write(prelude + x.group(0))
decls = ''.join(f'NINCC_CPU_EXPORT void {x.group(1)}(const NinccArgs* a);\n' for x in m)
open(f'{out}/table.cc', 'w').write(prelude + abi + decls + s[m[-1].end():])
print(f'{len(m)} kernels')
PY
flags=(-std=c++17 -O3 -fopenmp -fPIC -fvisibility=hidden -fvisibility-inlines-hidden $(grep -o -w 'avx512f\|avx512bw\|avx512dq\|avx512vl\|avx2\|fma' /proc/cpuinfo | sort -u | sed 's/^/-m/') -I"$(dirname "$0")/../../runtime/include")
/usr/bin/time -f "whole: %e wall %U+%S cpu" nice -n 5 g++ "${flags[@]}" -shared -Wl,-Bsymbolic "$src" -o "$work/whole.so"
t0=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
for c in "$work"/split/*.cc; do nice -n 5 g++ "${flags[@]}" -c "$c" -o "${c%.cc}.o"; done
nice -n 5 g++ -fopenmp -shared -Wl,-Bsymbolic "$work"/split/*.o -o "$work/split.so"
t1=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
echo "split: $(( (t1 - t0) / 100 )) cpu s (children of this shell, all TUs and the link)"
for v in whole split; do objdump -d --no-show-raw-insn "$work/$v.so" | awk '/^[0-9a-f]+ <.*>:$/{name=$2} {print name"\t"$0}' > "$work/$v.dis"; done
python3 - "$work" <<'PY'
import re, sys, collections
def load(p):
    d = collections.defaultdict(list)
    for line in open(p):
        name, _, ins = line.rstrip('\n').partition('\t')
        ins = re.sub(r'^\s*[0-9a-f]+:\s*', '', ins); ins = re.sub(r'\b[0-9a-f]{3,}\b', 'ADDR', ins); ins = re.sub(r'<[^>]*>', '<>', ins)
        d[name].append(ins)
    return d
a, b = load(sys.argv[1] + '/whole.dis'), load(sys.argv[1] + '/split.dis')
ks = [k for k in a if re.match(r'<k\w+>:$', k)]
same = [k for k in ks if a[k] == b.get(k)]
print(f'kernels {len(ks)}, same instructions {len(same)}')
for k in ks:
    if k not in same: print(f'  differs {k} whole {len(a[k])} split {len(b.get(k, []))} instructions')
PY
