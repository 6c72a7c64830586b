#!/usr/bin/env bash
# Every distinct convolution of torchvision's ResNet-50 (stride on the 3x3, v1.5) at batch 1 and 8, the
# 2x256x64x64 3x3 case and the ResNet-50 eval forward, ours (`runtime bench`) beside PyTorch
# (benchmarks/torch_bench.py) in the same run; prints a markdown table.
# Usage: benchmarks/compare_conv.sh [threads] [batches]   (defaults: 2, "1 8")
# RUNTIME_WINOGRAD=0 in the environment times our GEMM paths only.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batches=${2:-"1 8"}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX}
# in-channels x plane : kernel : out : stride
layers="3x224:7:64:2 64x56:1:64:1 64x56:3:64:1 64x56:1:256:1 256x56:1:64:1 256x56:1:128:1 128x56:3:128:2 128x28:1:512:1 256x56:1:512:2
512x28:1:128:1 128x28:3:128:1 512x28:1:256:1 256x28:3:256:2 256x14:1:1024:1 512x28:1:1024:2 1024x14:1:256:1 256x14:3:256:1
1024x14:1:512:1 512x14:3:512:2 512x7:1:2048:1 1024x14:1:2048:2 2048x7:1:512:1 512x7:3:512:1"
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
runtime="dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll"
ours=$(mktemp); theirs=$(mktemp)
specs=()
for b in $batches; do
  for l in $layers; do
    IFS=: read -r cp k out s <<<"$l"; c=${cp%x*}; hw=${cp#*x}; p=$((k / 2))
    $runtime bench conv2d --shape "$b,$c,$hw,$hw" --kernel "$k" --out "$out" --stride "$s" --padding "$p" --threads "$threads" --json >> "$ours"
    specs+=("conv2d:${b}x${c}x${hw}x${hw}:k=$k:out=$out:s=$s:p=$p")
  done
done
$runtime bench conv2d --shape 2,256,64,64 --kernel 3 --out 256 --threads "$threads" --json >> "$ours"
specs+=("conv2d:2x256x64x64:k=3:out=256:s=1:p=1")
for b in $batches; do
  $runtime bench resnet50 --batch "$b" --threads "$threads" --json >> "$ours"
  specs+=("resnet50:$b")
done
/usr/bin/python3 benchmarks/torch_bench.py --threads "$threads" --ops "$(IFS=,; echo "${specs[*]}")" >> "$theirs"
/usr/bin/python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
theirs = [json.loads(l) for l in open(sys.argv[2]) if l.strip().startswith("{")]
print("| case | ours (ms) | PyTorch (ms) | ours GFLOP/s | PyTorch GFLOP/s | our speed / PyTorch's |")
print("|---|---|---|---|---|---|")
for a, b in zip(ours, theirs):
    ga, gb = a.get("GFLOP_per_s"), b.get("GFLOP_per_s")
    g = lambda v: f"{v:.0f}" if v else "-"
    print(f"| {a['op']} {a['shape']} | {a['median_ms']:.3f} | {b['median_ms']:.3f} | {g(ga)} | {g(gb)} | {b['median_ms'] / a['median_ms']:.2f}x |")
PY
rm -f "$ours" "$theirs"
