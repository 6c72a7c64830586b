#!/usr/bin/env bash
# The detectors beside torchvision, same machine, same run, one model per process (so each peak memory is its
# own): `runtime bench <model> [--train]` and benchmarks/torch_detection.py on the same 800x800 input (eval: one
# image through transform, backbone, heads and postprocess; --train: one SGD step at batch 2). Prints every JSON
# line, then a markdown table. Usage: benchmarks/compare_detection.sh [threads] [repeat]   (default 2, 3)
# MODELS narrows it down or adds Mask R-CNN (default "fasterrcnn_resnet50_fpn retinanet_resnet50_fpn"; also
# maskrcnn_resnet50_fpn); TRAIN=0 skips the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
repeat=${2:-3}
models=${MODELS:-"fasterrcnn_resnet50_fpn retinanet_resnet50_fpn"}
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
out=$(mktemp)
modes=("")
[ "${TRAIN:-1}" = 1 ] && modes+=("--train")
for m in $models; do
  for mode in "${modes[@]}"; do
    # shellcheck disable=SC2086
    dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll bench "$m" $mode --threads "$threads" --repeat "$repeat" --json | tee -a "$out"
    # shellcheck disable=SC2086
    OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX} OPENBLAS_NUM_THREADS=$threads \
      /usr/bin/python3 benchmarks/torch_detection.py --models "$m" $mode --threads "$threads" --repeat "$repeat" | tee -a "$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows:
    by.setdefault(r["op"], {})[r["impl"]] = r
print("| case | ours median (min) | torchvision median (min) | ours / torchvision | peak RSS ours / torchvision |")
print("|---|---|---|---|---|")
for op, d in by.items():
    o, t = d.get("runtime"), d.get("torch")
    if not (o and t):
        continue
    print(f"| {op} {o['shape']} | {o['median_ms']/1000:.2f} s ({o['min_ms']/1000:.2f}) | {t['median_ms']/1000:.2f} s ({t['min_ms']/1000:.2f}) "
          f"| {o['median_ms']/t['median_ms']:.2f}x | {o['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} MiB |")
PY
rm -f "$out"
