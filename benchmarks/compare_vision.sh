#!/usr/bin/env bash
# The vision operators beside their references, same machine, same run: `runtime bench <op>` and
# torchvision / scipy / PyTorch (benchmarks/torch_boxes.py, torch_roi.py, torch_deform.py,
# scipy_lsa.py, torch_attention.py) on identically generated inputs. Prints every JSON line, then a
# markdown table of median times. Usage: benchmarks/compare_vision.sh [threads]   (default 2)
# CASES narrows it down, e.g. CASES="nms lsa". The torchvision deform_conv2d backward takes minutes:
# it runs only with DEFORM_BACKWARD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
cases=${CASES:-"nms batched_nms roi_align roi_align_bwd roi_pool deform_conv2d lsa attention axial_attention"}
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
rt() { dotnet src/Runtime.Cli/bin/Release/net10.0/runtime.dll bench "$@" --threads "$threads" --json; }
py=/usr/bin/python3
out=$(mktemp)
for c in $cases; do
  case $c in
    nms|batched_nms) rt "$c" >> "$out"; $py benchmarks/torch_boxes.py --ops "$c" --threads "$threads" >> "$out" ;;
    roi_align|roi_pool) rt "$c" >> "$out"; $py benchmarks/torch_roi.py "$c" --threads "$threads" >> "$out" ;;
    roi_align_bwd) rt roi_align --backward >> "$out"; $py benchmarks/torch_roi.py roi_align --backward --threads "$threads" >> "$out" ;;
    deform_conv2d)
      rt deform_conv2d --shape 2,256,64,64 --kernel 3 --out 256 >> "$out"
      $py benchmarks/torch_deform.py --threads "$threads" --shape 2x256x64x64 --out 256 --repeat 3 >> "$out"
      if [ "${DEFORM_BACKWARD:-0}" = 1 ]; then
        rt deform_conv2d --shape 2,256,64,64 --kernel 3 --out 256 --backward >> "$out"
        $py benchmarks/torch_deform.py --threads "$threads" --shape 2x256x64x64 --out 256 --backward --repeat 1 >> "$out"
      fi ;;
    lsa) rt lsa --shape 200 >> "$out"; $py benchmarks/scipy_lsa.py --shapes 200 >> "$out" ;;
    attention) rt attention --shape 1,8,4096,64 >> "$out"; $py benchmarks/torch_attention.py --threads "$threads" --ops attention:1x8x4096x64 >> "$out" ;;
    axial_attention) rt axial_attention >> "$out"; $py benchmarks/torch_attention.py --threads "$threads" --ops axial_attention:1x128x33x33 >> "$out" ;;
    *) echo "unknown case $c" >&2; exit 2 ;;
  esac
done
cat "$out"
$py - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
ours = [r for r in rows if r.get("impl") == "runtime"]
print("\n| op | shape | ours (ms) | reference | reference (ms) | reference / ours |")
print("|---|---|---|---|---|---|")
for r in rows:
    if r.get("impl") == "runtime":
        continue
    # the nearest earlier line of ours with the same op (deform_conv2d's conv2d line pairs with ours too)
    mine = [o for o in ours if o["op"] == r["op"] and rows.index(o) < rows.index(r)]
    if not mine:
        continue
    a = mine[-1]
    print(f"| {r['op']} | {a['shape']} | {a['median_ms']:.3f} | {r.get('impl')} | {r['median_ms']:.3f} | {r['median_ms'] / a['median_ms']:.2f}x |")
PY
rm -f "$out"
