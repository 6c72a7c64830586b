#!/usr/bin/env bash
# MaX-DeepLab beside the PyTorch reference of the same network (benchmarks/torch_max_deeplab.py), same machine, same
# run, one case per process: the dual-path block at MaX-DeepLab-S's last stage (forward; forward + backward), the
# compact network (eval: preprocessing to panoptic output; --train: one Adam step at batch 2), and max_deeplab_s's
# eval forward at 641 x 641. Prints every JSON line, then a markdown table.
# Usage: benchmarks/compare_max_deeplab.sh [threads] [repeat]   (default 2, 3); CASES narrows the list down.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
repeat=${2:-3}
cases=${CASES:-"dual_path_block dual_path_block:--train max_deeplab_compact max_deeplab_compact:--train max_deeplab_s"}
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
out=$(mktemp)
for c in $cases; do
  name=${c%%:*}
  mode=""
  [ "$c" != "$name" ] && mode=${c#*:}
  # shellcheck disable=SC2086
  dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll bench "$name" $mode --threads "$threads" --repeat "$repeat" --json | tee -a "$out"
  # shellcheck disable=SC2086
  OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SKYLAKEX} OPENBLAS_NUM_THREADS=$threads \
    /usr/bin/python3 benchmarks/torch_max_deeplab.py --case "$name" $mode --threads "$threads" --repeat "$repeat" | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows:
    by.setdefault(r["op"], {})[r["impl"]] = r
print("| case | ours median (min) | PyTorch median (min) | ours / PyTorch | parameters ours / PyTorch | peak RSS ours / PyTorch |")
print("|---|---|---|---|---|---|")
for op, d in by.items():
    o, t = d.get("runtime"), d.get("torch")
    if not (o and t):
        continue
    print(f"| {op} {o['shape']} | {o['median_ms']:.1f} ms ({o['min_ms']:.1f}) | {t['median_ms']:.1f} ms ({t['min_ms']:.1f}) "
          f"| {o['median_ms']/t['median_ms']:.2f}x | {o.get('parameters')} / {t.get('parameters')} | {o['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} MiB |")
PY
