#!/usr/bin/env bash
# Runs ON the GPU machine, from the folder gpu-check.sh prepared (bin/runtime beside this script):
#   1. `runtime devices`: the driver and NVRTC must be found;
#   2. `runtime selfcheck --device cuda:0`: every operator against the CPU, forward and backward;
#   3. benchmarks, ours beside PyTorch on the same shapes in the same run: matmul 4096^3 float32 with
#      TF32 off (and 1024, 2048), elementwise add 16M against PyTorch's add and device-to-device copy
#      bandwidth, relu/exp/sum/softmax; the vision operators (nms, roi_align, roi_pool, deform_conv2d,
#      deform_roi_pool, attention) beside torchvision/PyTorch on CUDA (benchmarks/torch_*.py, copied by gpu-check.sh);
#      the detectors, the DCNv2 ones (eval) beside the same networks in PyTorch with torchvision's deform_conv2d.
# Full logs go to logs/ (or $1); a short table is printed last (also logs/table.md).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin="$here/bin/runtime"
logs=${1:-"$here/logs"}
device=${DEVICE:-cuda:0}
mkdir -p "$logs"
export RUNTIME_KERNEL_CACHE=${RUNTIME_KERNEL_CACHE:-"$here/kernel-cache"}

# NVRTC: the runtime searches the library path, CUDA_HOME, /usr/local/cuda and common Python folders;
# if none has it, ask this machine's Python where its nvidia wheels are (PyTorch brings NVRTC along).
if [ -z "${RUNTIME_NVRTC_PATH:-}" ] && ! ldconfig -p 2>/dev/null | grep -qE 'libnvrtc\.so\.1[0-9]' \
   && [ ! -e /usr/local/cuda/lib64/libnvrtc.so ] && [ -z "${CUDA_HOME:-}" ]; then
  cand=$(python3 - 2>/dev/null <<'PY'
import glob, os, site
roots = set(site.getsitepackages() + [site.getusersitepackages()])
try:
    import nvidia
    roots.update(os.path.dirname(p) for p in nvidia.__path__)
except Exception:
    pass
hits = [h for r in roots for h in glob.glob(os.path.join(r, "nvidia", "*", "lib", "libnvrtc.so.*")) if "builtins" not in h and "alt" not in h]
print(sorted(hits)[-1] if hits else "")
PY
)
  if [ -n "$cand" ]; then export RUNTIME_NVRTC_PATH=$cand; echo "NVRTC from Python: $cand"; fi
fi

echo "== devices" | tee "$logs/devices.log"
"$bin" devices 2>&1 | tee -a "$logs/devices.log"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv >> "$logs/devices.log" 2>&1 || true

echo "== selfcheck $device"
"$bin" selfcheck --device "$device" > "$logs/selfcheck.log" 2>&1
selfcheck_rc=$?
grep -E "^FAIL" "$logs/selfcheck.log" | head -n 40
tail -n 1 "$logs/selfcheck.log"

echo "== benchmarks (ours)"
: > "$logs/bench_ours.jsonl"
for spec in ${SPECS:-matmul:4096 matmul:2048 matmul:1024 add sum relu exp softmax}; do
  op=${spec%%:*}; shape=${spec#*:}; [ "$shape" = "$spec" ] && shape=""
  args=(bench "$op" --device "$device" --json); [ -n "$shape" ] && args+=(--shape "$shape")
  "$bin" "${args[@]}" >> "$logs/bench_ours.jsonl" 2>> "$logs/bench_ours.err" || echo "bench $spec failed (see bench_ours.err)"
done
# The vision operators on the device (the PyTorch/torchvision side comes from the benchmarks/ scripts below).
for spec in ${VISION_SPECS:-"nms" "batched_nms" "roi_align" "roi_align --backward" "roi_pool" "deform_roi_pool" "deform_roi_pool --backward" "deform_conv2d --shape 2,256,64,64 --kernel 3 --out 256" "attention --shape 1,8,4096,64" "attention --shape 1,8,4096,64 --backward" "paste_masks"}; do
  # shellcheck disable=SC2086
  "$bin" bench $spec --device "$device" --json >> "$logs/bench_ours.jsonl" 2>> "$logs/bench_ours.err" || echo "bench $spec failed (see bench_ours.err)"
done
# The detectors: one 800x800 image through the whole eval model, and a training step at batch 2
# (benchmarks/torch_detection.py times torchvision the same way below).
# MaX-DeepLab-S: one 641x641 image from preprocessing to the panoptic output, a training step at batch 2, and one
# dual-path block at its last stage (benchmarks/torch_max_deeplab.py times the PyTorch reference the same way).
for spec in ${MODEL_SPECS:-"fasterrcnn_resnet50_fpn" "retinanet_resnet50_fpn" "maskrcnn_resnet50_fpn" "fasterrcnn_resnet50_fpn_dcnv2" "maskrcnn_resnet50_fpn_dcnv2" "fasterrcnn_resnet50_fpn --train" "retinanet_resnet50_fpn --train" "maskrcnn_resnet50_fpn --train" "fasterrcnn_resnet50_fpn_dcnv2 --train" "max_deeplab_s" "max_deeplab_s --train" "dual_path_block" "dual_path_block --train"}; do
  # shellcheck disable=SC2086
  "$bin" bench $spec --device "$device" --json >> "$logs/bench_ours.jsonl" 2>> "$logs/bench_ours.err" || echo "bench $spec failed (see bench_ours.err)"
done
cat "$logs/bench_ours.jsonl"

echo "== benchmarks (PyTorch)"
python3 - "$logs/bench_torch.jsonl" > "$logs/bench_torch.log" 2>&1 <<'PY'
import json, statistics, sys
import torch

torch.backends.cuda.matmul.allow_tf32 = False   # our matmul is plain FP32 FMA: compare like with like
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda:0")
out = open(sys.argv[1], "w")

def timed(fn, reps=None):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); fn(); e.record(); torch.cuda.synchronize()
    first = s.elapsed_time(e)
    reps = reps or int(min(200, max(10, 1000 / max(first, 0.01))))
    times = []
    for _ in range(reps):
        s.record(); fn(); e.record(); e.synchronize()
        times.append(s.elapsed_time(e))
    return statistics.median(times), min(times), reps

def emit(op, shape, med, mn, reps, work, unit):
    row = {"impl": "torch", "op": op, "shape": shape, "dtype": "float32", "device": "cuda:0", "repeats": reps,
           "median_ms": round(med, 4), "min_ms": round(mn, 4), unit: round(work / (med / 1000), 2), "version": torch.__version__}
    print(json.dumps(row)); out.write(json.dumps(row) + "\n"); out.flush()

g = torch.Generator(device=dev).manual_seed(1234)
with torch.no_grad():
    for n in (4096, 2048, 1024):
        a = torch.randn(n, n, device=dev, generator=g); b = torch.randn(n, n, device=dev, generator=g)
        emit("matmul", f"{n}x{n}x{n}", *timed(lambda: a @ b), 2.0 * n ** 3 / 1e9, "GFLOP_per_s")
    n = 16 * 1024 * 1024
    a = torch.randn(n, device=dev, generator=g); b = torch.randn(n, device=dev, generator=g); c = torch.empty_like(a)
    emit("add", str(n), *timed(lambda: a + b), 3.0 * n * 4 / 1e9, "GB_per_s")
    emit("add_out", str(n), *timed(lambda: torch.add(a, b, out=c)), 3.0 * n * 4 / 1e9, "GB_per_s")
    emit("copy", str(n), *timed(lambda: c.copy_(a)), 2.0 * n * 4 / 1e9, "GB_per_s")
    emit("sum", str(n), *timed(lambda: a.sum()), 1.0 * n * 4 / 1e9, "GB_per_s")
    emit("relu", str(n), *timed(lambda: torch.relu(a)), 2.0 * n * 4 / 1e9, "GB_per_s")
    emit("exp", str(n), *timed(lambda: torch.exp(a)), 2.0 * n * 4 / 1e9, "GB_per_s")
    s = torch.randn(4096, 1024, device=dev, generator=g)
    emit("softmax", "4096x1024", *timed(lambda: torch.softmax(s, -1)), 2.0 * s.numel() * 4 / 1e9, "GB_per_s")
PY
cat "$logs/bench_torch.log"
if [ -d "$here/benchmarks" ]; then
  echo "== benchmarks (torchvision / PyTorch, vision operators)"
  {
    python3 "$here/benchmarks/torch_boxes.py" --ops nms,batched_nms --device cuda
    python3 "$here/benchmarks/torch_roi.py" roi_align --device cuda
    python3 "$here/benchmarks/torch_roi.py" roi_align --backward --device cuda
    python3 "$here/benchmarks/torch_roi.py" roi_pool --device cuda
    python3 "$here/benchmarks/torch_deform_roi.py" --device cuda
    python3 "$here/benchmarks/torch_deform_roi.py" --backward --device cuda
    python3 "$here/benchmarks/torch_attention.py" --ops attention:1x8x4096x64 --device cuda
    python3 "$here/benchmarks/torch_attention.py" --ops attention:1x8x4096x64 --backward --device cuda
    python3 "$here/benchmarks/torch_masks.py" --device cuda
    python3 "$here/benchmarks/torch_detection.py" --device cuda --models fasterrcnn_resnet50_fpn,retinanet_resnet50_fpn,maskrcnn_resnet50_fpn
    python3 "$here/benchmarks/torch_detection.py" --device cuda --models fasterrcnn_resnet50_fpn_dcnv2,maskrcnn_resnet50_fpn_dcnv2
    python3 "$here/benchmarks/torch_detection.py" --device cuda --train --models fasterrcnn_resnet50_fpn,retinanet_resnet50_fpn,maskrcnn_resnet50_fpn
    python3 "$here/benchmarks/torch_max_deeplab.py" --device cuda --case max_deeplab_s
    python3 "$here/benchmarks/torch_max_deeplab.py" --device cuda --case max_deeplab_s --train
    python3 "$here/benchmarks/torch_max_deeplab.py" --device cuda --case dual_path_block
    python3 "$here/benchmarks/torch_max_deeplab.py" --device cuda --case dual_path_block --train
  } 2>> "$logs/bench_torch.log" | grep '^{' | tee -a "$logs/bench_torch.jsonl"
fi

python3 - "$logs/bench_ours.jsonl" "$logs/bench_torch.jsonl" > "$logs/table.md" <<'PY'
import json, sys
ours = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
torch = {}
try:
    for l in open(sys.argv[2]):
        if l.strip():
            r = json.loads(l); torch[(r["op"], r["shape"])] = r
except FileNotFoundError:
    pass
def rate(r):
    for u in ("GFLOP_per_s", "GB_per_s"):
        if u in r: return r[u], u.replace("_per_", "/")
    for k, x in r.items():  # the vision benchmarks' own units (kbox_per_s, Mout_per_s, ...)
        if k.endswith("_per_s"): return x, k.replace("_per_", "/")
    return float("nan"), ""
print("| op | shape | ours (ms) | PyTorch (ms) | ours | PyTorch | ours / PyTorch |")
print("|---|---|---|---|---|---|---|")
for r in ours:
    t = torch.get((r["op"], r["shape"]))
    v, u = rate(r)
    if t is None:
        print(f"| {r['op']} | {r['shape']} | {r['median_ms']:.3f} | | {v:.1f} {u} | | |"); continue
    tv, _ = rate(t)
    print(f"| {r['op']} | {r['shape']} | {r['median_ms']:.3f} | {t['median_ms']:.3f} | {v:.1f} {u} | {tv:.1f} {u} | {t['median_ms'] / r['median_ms']:.2f} |")
for key in (("copy", str(16 * 1024 * 1024)), ("add_out", str(16 * 1024 * 1024))):
    if key in torch:
        t = torch[key]; print(f"| torch {key[0]} (reference) | {key[1]} | | {t['median_ms']:.3f} | | {rate(t)[0]:.1f} GB/s | |")
PY
echo "== summary ($logs)"
grep -E "passed, .* failed" "$logs/selfcheck.log" | tail -n 1
cat "$logs/table.md"
exit $selfcheck_rc
