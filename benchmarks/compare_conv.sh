#!/usr/bin/env bash
# Every distinct convolution of torchvision's ResNet-50 (stride on the 3x3, v1.5) at batch 1 and 8, the
# 2x256x64x64 3x3 case and the ResNet-50 eval forward, ours (`runtime bench`) beside PyTorch
# (benchmarks/torch_bench.py) in the same run; prints a markdown table.
# Usage: benchmarks/compare_conv.sh [threads] [batches] [rounds]   (defaults: 2, "1 8", 3)
# Each round times every case on our side and on PyTorch's (the side that goes first alternates from round to round);
# a case's figure is the median over the rounds of its per-round medians, so that a drift of the machine's speed
# between the two sides' runs (shared virtual CPUs) does not decide a ratio.
# RUNTIME_WINOGRAD=0 / RUNTIME_PIXEL_MAJOR=0 in the environment time our other paths.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batches=${2:-"1 8"}
rounds=${3:-3}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX}
# in-channels x plane : kernel : out : stride
layers="3x224:7:64:2 64x56:1:64:1 64x56:3:64:1 64x56:1:256:1 256x56:1:64:1 256x56:1:128:1 128x56:3:128:2 128x28:1:512:1 256x56:1:512:2
512x28:1:128:1 128x28:3:128:1 512x28:1:256:1 256x28:3:256:2 256x14:1:1024:1 512x28:1:1024:2 1024x14:1:256:1 256x14:3:256:1
1024x14:1:512:1 512x14:3:512:2 512x7:1:2048:1 1024x14:1:2048:2 2048x7:1:512:1 512x7:3:512:1"
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
runtime="dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll"
dir=$(mktemp -d)
cases=(); specs=()
for b in $batches; do
  for l in $layers; do
    IFS=: read -r cp k out s <<<"$l"; c=${cp%x*}; hw=${cp#*x}; p=$((k / 2))
    cases+=("conv2d --shape $b,$c,$hw,$hw --kernel $k --out $out --stride $s --padding $p")
    specs+=("conv2d:${b}x${c}x${hw}x${hw}:k=$k:out=$out:s=$s:p=$p")
  done
done
cases+=("conv2d --shape 2,256,64,64 --kernel 3 --out 256")
specs+=("conv2d:2x256x64x64:k=3:out=256:s=1:p=1")
for b in $batches; do
  cases+=("resnet50 --batch $b")
  specs+=("resnet50:$b")
done
run_ours() { for c in "${cases[@]}"; do $runtime bench $c --threads "$threads" --json; done > "$dir/ours_$1"; }
run_theirs() { /usr/bin/python3 benchmarks/torch_bench.py --threads "$threads" --ops "$(IFS=,; echo "${specs[*]}")" > "$dir/theirs_$1"; }
for r in $(seq 1 "$rounds"); do
  if [ $((r % 2)) -eq 1 ]; then run_ours "$r"; run_theirs "$r"; else run_theirs "$r"; run_ours "$r"; fi
done
/usr/bin/python3 - "$dir" "$rounds" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def load(name):
    return [json.loads(l) for l in open(f"{d}/{name}") if l.strip().startswith("{")]
ours = [load(f"ours_{r}") for r in range(1, rounds + 1)]
theirs = [load(f"theirs_{r}") for r in range(1, rounds + 1)]
print(f"Median over {rounds} rounds of each side's median; the range is the ratio's lowest and highest round.")
print()
print("| case | ours (ms) | PyTorch (ms) | ours GFLOP/s | PyTorch GFLOP/s | our speed / PyTorch's | range over rounds |")
print("|---|---|---|---|---|---|---|")
for i, a in enumerate(ours[0]):
    mo = statistics.median(o[i]["median_ms"] for o in ours)
    mt = statistics.median(t[i]["median_ms"] for t in theirs)
    ratios = [t[i]["median_ms"] / o[i]["median_ms"] for o, t in zip(ours, theirs)]
    work = a.get("GFLOP_per_s")
    g = lambda ms: f"{work * a['median_ms'] / ms:.0f}" if work else "-"
    print(f"| {a['op']} {a['shape']} | {mo:.3f} | {mt:.3f} | {g(mo)} | {g(mt)} | {mt / mo:.2f}x | {min(ratios):.2f}-{max(ratios):.2f}x |")
PY
rm -rf "$dir"
