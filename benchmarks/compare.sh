#!/usr/bin/env bash
# Runs `runtime bench` and PyTorch (benchmarks/torch_bench.py) on the same shapes, in the same run,
# and prints a markdown table. Usage: benchmarks/compare.sh [threads]   (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
specs=${SPECS:-"matmul:1024 matmul:2048 add softmax sum exp relu"}
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
out=$(mktemp)
for spec in $specs; do
  op=${spec%%:*}; shape=${spec#*:}; [ "$shape" = "$spec" ] && shape=""
  args=(bench "$op" --threads "$threads" --json); [ -n "$shape" ] && args+=(--shape "$shape")
  dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll "${args[@]}" >> "$out"
  /usr/bin/python3 benchmarks/torch_bench.py --threads "$threads" --ops "$spec" >> "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| op | shape | ours (ms) | PyTorch (ms) | ours | PyTorch | speed-up |")
print("|---|---|---|---|---|---|---|")
for i in range(0, len(rows), 2):
    a, b = rows[i], rows[i + 1]
    unit = "GFLOP_per_s" if "GFLOP_per_s" in a else "GB_per_s"
    u = unit.replace("_per_", "/")
    print(f"| {a['op']} | {a['shape']} | {a['median_ms']:.3f} | {b['median_ms']:.3f} | {a[unit]:.1f} {u} | {b[unit]:.1f} {u} | {b['median_ms'] / a['median_ms']:.2f}x |")
PY
rm -f "$out"
