#!/usr/bin/env bash
# Mask^X R-CNN's partial-supervision experiment (Hu et al. 2018, "Learning to Segment Every Thing") on the shapes
# set: the six shape classes are split into A (trained with masks) and B (boxes only), and four mask heads train with
# the same schedule and seed:
#   agnostic      maskx_rcnn_compact --mask-head agnostic       one class-agnostic mask (the paper's baseline)
#   transfer      maskx_rcnn_compact --mask-head transfer       per-class masks from the weight transfer T (FCN)
#   transfer_mlp  maskx_rcnn_compact --mask-head transfer_mlp   T plus the class-agnostic MLP branch (Mask^X R-CNN)
#   oracle        maskrcnn_compact                              Mask R-CNN trained with every class's masks
# TRAINING=stagewise (default; the paper's stage-wise training): a compact Faster R-CNN trains first
# (<out>/detector), then each row trains its mask branch alone on it (--init, --freeze-detector), so every row has
# the same detections and the table compares masks only. TRAINING=end_to_end: each row trains whole, from scratch.
# Each row is then scored on the held-out split (`runtime eval --mask-classes A`): mask AP on A's and on B's
# categories. Prints the markdown table and writes it to <out>/table.md.
#
# A row already scored in <out> (<out>/<row>/eval.json) is kept, and so is a trained <out>/detector: delete its folder
# to redo it.
#
# Usage: scripts/maskx_experiment.sh [out-dir]   (default runs/maskx)
# Settings (environment): MASK_CLASSES (set A, default circle,square,triangle); the rows' schedule EPOCHS (2),
# EPOCH_IMAGES (1000), LR (0.02); the detector's DET_EPOCHS (3), DET_EPOCH_IMAGES (1000), DET_LR (0.02); BATCH (4),
# SEED (1), ROWS (default "agnostic transfer transfer_mlp oracle"), EXTRA (more train options for every row).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/maskx}
a=${MASK_CLASSES:-circle,square,triangle}
rows=${ROWS:-"agnostic transfer transfer_mlp oracle"}
training=${TRAINING:-stagewise}
common=(--data shapes --batch "${BATCH:-4}" --seed "${SEED:-1}" --final-eval-only)
schedule=(--epochs "${EPOCHS:-2}" --epoch-images "${EPOCH_IMAGES:-1000}" --lr "${LR:-0.02}")
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
# The rows run a private copy of the build, so rebuilding the tree meanwhile cannot change a later row.
mkdir -p "$out/data"
rm -rf "$out/bin" && cp -r src/Runtime.Cli/bin/Release/net10.0 "$out/bin"
runtime() { dotnet "$out/bin/runtime.dll" "$@"; }
# Every run reads the one generated shapes set in <out>/data.
link_data() { mkdir -p "$1"; [ -e "$1/data" ] || ln -s ../data "$1/data"; }
case $training in
  stagewise)
    if [ ! -f "$out/detector/model.safetensors" ]; then
      link_data "$out/detector"
      start=$(date +%s)
      runtime train fasterrcnn_compact --out "$out/detector" "${common[@]}" --epochs "${DET_EPOCHS:-3}" \
        --epoch-images "${DET_EPOCH_IMAGES:-1000}" --lr "${DET_LR:-0.02}" > "$out/detector/train.log"
      echo "$(($(date +%s) - start))" > "$out/detector/seconds"
      grep -E "^epoch [0-9]+ done" "$out/detector/train.log" | sed "s/^/detector: /"
    fi
    stage=(--init "$out/detector" --freeze-detector) ;;
  end_to_end) stage=() ;;
  *) echo "TRAINING must be stagewise or end_to_end, got '$training'" >&2; exit 2 ;;
esac
for row in $rows; do
  case $row in
    oracle) args=(maskrcnn_compact) ;;
    agnostic | agnostic_mlp | transfer | transfer_mlp) args=(maskx_rcnn_compact --mask-head "$row" --mask-classes "$a") ;;
    *) echo "unknown row '$row'" >&2; exit 2 ;;
  esac
  dir="$out/$row"
  if [ -f "$dir/eval.json" ]; then echo "$row: kept ($dir/eval.json)"; continue; fi
  link_data "$dir"
  start=$(date +%s)
  # shellcheck disable=SC2086
  runtime train "${args[@]}" --out "$dir" "${common[@]}" "${schedule[@]}" "${stage[@]}" ${EXTRA:-} > "$dir/train.log"
  echo "$(($(date +%s) - start))" > "$dir/seconds"
  runtime eval "$dir" --data shapes --mask-classes "$a" --json "$dir/eval.json" > "$dir/eval.log"
  grep -E "^mask AP on" "$dir/eval.log" | sed "s/^/$row: /"
done
/usr/bin/python3 - "$out" "$training" $rows <<'PY' | tee "$out/table.md"
import json, os, sys
out, training, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
names = {"agnostic": "class-agnostic (baseline)", "agnostic_mlp": "class-agnostic + MLP", "transfer": "transfer (FCN)",
         "transfer_mlp": "transfer + MLP (Mask^X R-CNN)", "oracle": "fully supervised Mask R-CNN (oracle)"}
first = json.load(open(os.path.join(out, rows[0], "eval.json")))
print(f"{training} training; A (masks): {', '.join(first['mask_classes_a'])}")
print()
print("| mask head | mask AP on A | AP50 on A | mask AP on B | AP50 on B | box AP | train time |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    e = json.load(open(os.path.join(out, row, "eval.json")))
    sa, sb = e["mask_stats_a"], e["mask_stats_b"]
    secs = int(open(os.path.join(out, row, "seconds")).read())
    print(f"| {names[row]} | {sa['AP']:.3f} | {sa['AP50']:.3f} | {sb['AP']:.3f} | {sb['AP50']:.3f} | {e['stats']['AP']:.3f} | {secs // 60} min {secs % 60:02d} s |")
PY
