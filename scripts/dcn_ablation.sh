#!/usr/bin/env bash
# The DCNv2 ablation (Zhu et al. 2018, "Deformable ConvNets v2") on the shapes set: four compact Faster R-CNNs with
# the same schedule (the compact default: 3 epochs of the 3000 training images, batch 4, lr 0.01) and seed, each
# adding one of the paper's parts:
#   plain               fasterrcnn_compact
#   dcnv2               fasterrcnn_dcnv2_compact --box-pool roi_align --mimic off   modulated deformable 3x3 in c3-c5
#   dcnv2_mdpool        fasterrcnn_dcnv2_compact --mimic off                        + modulated deformable RoI pooling
#   dcnv2_mdpool_mimic  fasterrcnn_dcnv2_compact                                    + R-CNN feature mimicking
# Each row's training ends with the COCO evaluation of the 300 held-out images (history.json); the script prints the
# markdown table and writes it to <out>/table.md. A row already trained (<out>/<row>/history.json with 3 epochs) is
# kept: delete its folder to redo it.
#
# Usage: scripts/dcn_ablation.sh [out-dir]   (default runs/dcn_ablation)
# Settings (environment): ROWS (default "plain dcnv2 dcnv2_mdpool dcnv2_mdpool_mimic"), SEED (1), EXTRA (more train
# options for every row).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/dcn_ablation}
rows=${ROWS:-"plain dcnv2 dcnv2_mdpool dcnv2_mdpool_mimic"}
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
# The rows run a private copy of the build, so rebuilding the tree meanwhile cannot change a later row.
mkdir -p "$out/data"
rm -rf "$out/bin" && cp -r src/Runtime.Cli/bin/Release/net10.0 "$out/bin"
for row in $rows; do
  case $row in
    plain) args=(fasterrcnn_compact) ;;
    dcnv2) args=(fasterrcnn_dcnv2_compact --box-pool roi_align --mimic off) ;;
    dcnv2_mdpool) args=(fasterrcnn_dcnv2_compact --mimic off) ;;
    dcnv2_mdpool_mimic) args=(fasterrcnn_dcnv2_compact) ;;
    *) echo "unknown row '$row'" >&2; exit 2 ;;
  esac
  dir="$out/$row"
  if [ -f "$dir/history.json" ] && /usr/bin/python3 -c "import json,sys; sys.exit(0 if json.load(open('$dir/history.json'))[-1]['epoch'] == 3 else 1)"; then
    echo "$row: kept ($dir/history.json)"; continue
  fi
  mkdir -p "$dir"
  [ -e "$dir/data" ] || ln -s ../data "$dir/data"
  # shellcheck disable=SC2086
  dotnet "$out/bin/runtime.dll" train "${args[@]}" --data shapes --out "$dir" --seed "${SEED:-1}" ${EXTRA:-} > "$dir/train.log"
  grep -E "^epoch [0-9]+ done" "$dir/train.log" | tail -1 | sed "s/^/$row: /"
done
/usr/bin/python3 - "$out" $rows <<'PY' | tee "$out/table.md"
import json, os, sys
out, rows = sys.argv[1], sys.argv[2:]
names = {"plain": "plain (ResNet-18/4 FPN, RoIAlign)", "dcnv2": "DCNv2 in c3-c5",
         "dcnv2_mdpool": "+ modulated deformable RoI pooling", "dcnv2_mdpool_mimic": "+ R-CNN feature mimicking"}
print("| model | box AP | AP50 | AP75 | AP small | AP medium | AP large | train time |")
print("|---|---|---|---|---|---|---|---|")
for row in rows:
    last = json.load(open(os.path.join(out, row, "history.json")))[-1]
    s = last["stats"]
    m, sec = divmod(int(last["seconds"]), 60)
    print(f"| {names[row]} | {s[0]:.3f} | {s[1]:.3f} | {s[2]:.3f} | {s[3]:.3f} | {s[4]:.3f} | {s[5]:.3f} | {m} min {sec:02d} s |")
PY
