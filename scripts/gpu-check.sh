#!/usr/bin/env bash
# Prepares a visit to the GPU machine (which has the NVIDIA driver, CUDA 13 with NVRTC, Python with
# PyTorch, and no .NET): publishes `runtime` self-contained, single-file and trimmed into .gpu/bin,
# puts scripts/gpu-run.sh beside it, and checks here that the trimmed binary starts, finds its devices
# (the GPU assembly is loaded by name, so trimming must have kept it) and passes the self-check on any
# OpenCL device this machine has. Take the whole .gpu folder along and run .gpu/gpu-run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '/.gpu/' .gitignore 2>/dev/null || grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu/bin
dotnet publish src/Runtime.Cli -c Release -r linux-x64 --self-contained \
  -p:PublishSingleFile=true -p:PublishTrimmed=true -o .gpu/bin 2>&1 | grep -E "warning|error|->" || true
rm -f .gpu/bin/*.pdb
cp scripts/gpu-run.sh .gpu/gpu-run.sh
mkdir -p .gpu/benchmarks
cp benchmarks/timing.py benchmarks/torch_boxes.py benchmarks/torch_roi.py benchmarks/torch_attention.py benchmarks/torch_detection.py benchmarks/torch_masks.py \
  benchmarks/dcn_torch.py benchmarks/torch_deform_roi.py benchmarks/torch_max_deeplab.py .gpu/benchmarks/
chmod +x .gpu/gpu-run.sh .gpu/bin/runtime
echo "== $(du -sh .gpu/bin/runtime | cut -f1) .gpu/bin/runtime"
echo "== devices (trimmed binary, here)"
.gpu/bin/runtime devices | tee /tmp/gpu-check-devices.txt
if grep -qE '^opencl:0 +available' /tmp/gpu-check-devices.txt; then
  echo "== selfcheck on opencl:0 (trimmed binary, here)"
  .gpu/bin/runtime selfcheck --device opencl:0 | tail -n 1
fi
echo "ready: copy .gpu/ to the GPU machine and run .gpu/gpu-run.sh there"
