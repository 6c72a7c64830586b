#!/usr/bin/env bash
# Mask^X R-CNN's partial-supervision experiment (Hu et al. 2018, "Learning to Segment Every Thing") on the shapes
# set: the six shape classes are split into A (trained with masks) and B (boxes only), and four detectors train with
# the same schedule and seed:
#   agnostic      maskx_rcnn_compact --mask-head agnostic       one class-agnostic mask (the paper's baseline)
#   transfer      maskx_rcnn_compact --mask-head transfer       per-class masks from the weight transfer T (FCN)
#   transfer_mlp  maskx_rcnn_compact --mask-head transfer_mlp   T plus the class-agnostic MLP branch (Mask^X R-CNN)
#   oracle        maskrcnn_compact                              Mask R-CNN trained with every class's masks
# Each is then scored on the held-out split (`runtime eval --mask-classes A`): mask AP on A's and on B's
# categories. Prints the markdown table and writes it to <out>/table.md.
#
# Usage: scripts/maskx_experiment.sh [out-dir]   (default runs/maskx)
# Settings (environment): MASK_CLASSES (set A, default circle,square,triangle), EPOCHS (3), EPOCH_IMAGES (1000),
# BATCH (4), LR (0.02), SEED (1), ROWS (default "agnostic transfer transfer_mlp oracle"), EXTRA (more train options
# for every row, e.g. "--no-stop-grad").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/maskx}
a=${MASK_CLASSES:-circle,square,triangle}
rows=${ROWS:-"agnostic transfer transfer_mlp oracle"}
schedule=(--epochs "${EPOCHS:-3}" --epoch-images "${EPOCH_IMAGES:-1000}" --batch "${BATCH:-4}" --lr "${LR:-0.02}" --seed "${SEED:-1}")
dotnet build src/Runtime.Cli -c Release -v q -nologo >/dev/null
# The rows run a private copy of the build, so rebuilding the tree meanwhile cannot change a later row.
mkdir -p "$out/data"
rm -rf "$out/bin" && cp -r src/Runtime.Cli/bin/Release/net10.0 "$out/bin"
runtime() { dotnet "$out/bin/runtime.dll" "$@"; }
for row in $rows; do
  case $row in
    oracle) args=(maskrcnn_compact) ;;
    agnostic | agnostic_mlp | transfer | transfer_mlp) args=(maskx_rcnn_compact --mask-head "$row" --mask-classes "$a") ;;
    *) echo "unknown row '$row'" >&2; exit 2 ;;
  esac
  dir="$out/$row"
  mkdir -p "$dir"
  # Every row reads the one generated shapes set in <out>/data.
  [ -e "$dir/data" ] || ln -s ../data "$dir/data"
  start=$(date +%s)
  # shellcheck disable=SC2086
  runtime train "${args[@]}" --data shapes --out "$dir" "${schedule[@]}" --final-eval-only ${EXTRA:-} > "$dir/train.log"
  end=$(date +%s)
  echo "$((end - start))" > "$dir/seconds"
  runtime eval "$dir" --data shapes --mask-classes "$a" --json "$dir/eval.json" > "$dir/eval.log"
  grep -E "^epoch [0-9]+ done|^mask AP on" "$dir/eval.log" "$dir/train.log" | sed "s/^/$row: /"
done
/usr/bin/python3 - "$out" "$a" $rows <<'PY' | tee "$out/table.md"
import json, os, sys
out, a, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
names = {"agnostic": "class-agnostic (baseline)", "agnostic_mlp": "class-agnostic + MLP", "transfer": "transfer (FCN)",
         "transfer_mlp": "transfer + MLP (Mask^X R-CNN)", "oracle": "fully supervised Mask R-CNN (oracle)"}
first = json.load(open(os.path.join(out, rows[0], "eval.json")))
print(f"A (masks): {', '.join(first['mask_classes_a'])}")
print()
print("| mask head | mask AP on A | AP50 on A | mask AP on B | AP50 on B | box AP | train time |")
print("|---|---|---|---|---|---|---|")
for row in rows:
    e = json.load(open(os.path.join(out, row, "eval.json")))
    sa, sb = e["mask_stats_a"], e["mask_stats_b"]
    secs = int(open(os.path.join(out, row, "seconds")).read())
    print(f"| {names[row]} | {sa['AP']:.3f} | {sa['AP50']:.3f} | {sb['AP']:.3f} | {sb['AP50']:.3f} | {e['stats']['AP']:.3f} | {secs // 60} min {secs % 60:02d} s |")
PY
