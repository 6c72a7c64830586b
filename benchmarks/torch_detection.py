#!/usr/bin/env python3
"""Times torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn / retinanet_resnet50_fpn as
`runtime bench fasterrcnn_resnet50_fpn|maskrcnn_resnet50_fpn|retinanet_resnet50_fpn [--train] [--size N]` does;
prints the same JSON lines (impl "torch"), one per model.

Usage: OPENBLAS_CORETYPE=SKYLAKEX OPENBLAS_NUM_THREADS=2 /usr/bin/python3 benchmarks/torch_detection.py
           [--models fasterrcnn_resnet50_fpn,retinanet_resnet50_fpn] [--train] [--size 800] [--threads 2] [--repeat N]
(--models also takes maskrcnn_resnet50_fpn; the default list stays the two of the first comparison.)
Debian's torch calls the system BLAS (libblas.so.3, OpenBLAS when libopenblas0 is installed, else the slow
reference BLAS); on AVX-512 machines set OPENBLAS_CORETYPE=SKYLAKEX, since Debian's OpenBLAS otherwise picks a
slower kernel (on AVX-512 Intel, and on the AMD EPYC these sessions run on: 1024^3 sgemm at 2 threads took 43 ms
without it and 18 ms with it). The box head's Linear layers (12544 x 1024 on 1000 RoIs) run on that BLAS; the
convolutions on oneDNN.

Models: torchvision.models.detection.<name>(weights=None, weights_backbone=None, num_classes=91), the defaults
(min_size 800, max_size 1333). With no pretrained weights torchvision builds the ResNet-50 body with
nn.BatchNorm2d (not FrozenBatchNorm2d) and all five stages trainable. Weights are torchvision's random
initialisation after torch.manual_seed(1234).

Eval (default): one --size x --size image (default 800: the transform keeps it 800 x 800, no padding), values
torch.rand with a generator seeded 1234, through the whole model (transform, backbone, heads, postprocess),
model.eval() under torch.no_grad(). Random weights give degenerate counts (the RPN keeps its full 1000
proposals; the box head may keep 0 or 100 detections): "detections" (and for Faster R-CNN "proposals") say how
many came out, so that the C# run is compared on equal work.

--train: one training step at batch 2, model.train(): two --size x --size torch.rand images (same generator,
after the eval image), each with the 3 ground-truth boxes (x1, y1, x2, y2) = size * (0.10, 0.15, 0.45, 0.50),
size * (0.50, 0.20, 0.90, 0.55), size * (0.30, 0.55, 0.70, 0.95), labels 1, 2, 3; SGD(lr 1e-4, momentum 0.9,
weight_decay 1e-4) on the parameters that require grad: zero_grad, losses = model(images, targets),
sum(losses.values()).backward(), step. "loss" is the first step's total loss. Mask R-CNN's targets also carry
masks: uint8 [3, size, size], box k's mask 1 on rows int(y1) <= y < int(y2) and columns int(x1) <= x < int(x2).

DCN models (eval only): fasterrcnn_resnet50_fpn_dcnv2 / maskrcnn_resnet50_fpn_dcnv2 are the torchvision model above
turned into the catalogue's DCNv2 network by dcn_torch.make_dcnv2 (after the seed): modulated deformable 3x3
convolutions in layer2-layer4 on torchvision.ops.deform_conv2d (mmcv's pack, conv_offset zero) and the box pooling
replaced by modulated deformable RoI pooling (mmcv's pack with 1024-wide branches, shared by the FPN levels, written
in PyTorch); R-CNN feature mimicking is training-only and not built. fasterrcnn_resnet50_fpn_dcnv2_backbone has the
deformable convolutions only.

Timing: benchmarks/timing.py (one warm-up, then about 15 s of repetitions, 3 to 30, or --repeat), as
`runtime bench resnet50` does. Memory: ru_maxrss of the process when the model is built and the inputs made
(peak_rss_before_mb) and after all runs (peak_rss_mb), in MiB; ru_maxrss never goes down, so time one model per
process for an honest peak.
"""
import argparse
import json
import resource

import torch
import torchvision
from torchvision.models import detection

import dcn_torch
import timing

BOXES = [(0.10, 0.15, 0.45, 0.50), (0.50, 0.20, 0.90, 0.55), (0.30, 0.55, 0.70, 0.95)]


def rss_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


DCN_MODELS = {
    "fasterrcnn_resnet50_fpn_dcnv2": ("fasterrcnn_resnet50_fpn", True),
    "maskrcnn_resnet50_fpn_dcnv2": ("maskrcnn_resnet50_fpn", True),
    "fasterrcnn_resnet50_fpn_dcnv2_backbone": ("fasterrcnn_resnet50_fpn", False),
}


def bench(name, train, size, repeat, threads, device="cpu"):
    torch.manual_seed(1234)
    base, box_pool = DCN_MODELS.get(name, (name, None))
    model = getattr(detection, base)(weights=None, weights_backbone=None, num_classes=91)
    if box_pool is not None:
        if train:
            raise SystemExit(f"{name}: eval only (the training step would need R-CNN feature mimicking)")
        model = dcn_torch.make_dcnv2(model, box_pool=box_pool)
    model = model.to(device)
    gen = torch.Generator().manual_seed(1234)
    image = torch.rand(3, size, size, generator=gen).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    counts = {}
    if train:
        images = [torch.rand(3, size, size, generator=gen).to(device) for _ in range(2)]
        targets = [{"boxes": torch.tensor([[v * size for v in b] for b in BOXES], dtype=torch.float32, device=device),
                    "labels": torch.tensor([1, 2, 3], dtype=torch.int64, device=device)} for _ in images]
        if name.startswith("maskrcnn"):
            for t in targets:
                masks = torch.zeros(len(BOXES), size, size, dtype=torch.uint8)
                for k, (x1, y1, x2, y2) in enumerate(t["boxes"].tolist()):
                    masks[k, int(y1):int(y2), int(x1):int(x2)] = 1
                t["masks"] = masks.to(device)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def fn():
            opt.zero_grad(set_to_none=True)
            losses = model(images, targets)
            loss = sum(losses.values())
            loss.backward()
            opt.step()
            counts.setdefault("loss", round(float(loss), 6))
        shape = f"2x3x{size}x{size}"
    else:
        model.eval()
        if hasattr(model, "rpn"):
            model.rpn.register_forward_hook(lambda m, i, o: counts.__setitem__("proposals", int(o[0][0].shape[0])))

        def fn():
            with torch.no_grad():
                out = model([image])
            counts["detections"] = int(out[0]["boxes"].shape[0])
        shape = f"1x3x{size}x{size}"
    before = rss_mb()
    med, mn, reps = timing.measure(fn, repeat, sync=sync, before=1, budget_ms=15000, min_reps=3, max_reps=30)
    return {"impl": "torch", "op": name + ("_train" if train else ""), "shape": shape, "dtype": "float32",
            "device": device, "threads": threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
            "img_per_s": round((2 if train else 1) / (med / 1000), 3), **counts,
            "peak_rss_before_mb": before, "peak_rss_mb": rss_mb(),
            "version": f"torch {torch.__version__} torchvision {torchvision.__version__}"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="fasterrcnn_resnet50_fpn,retinanet_resnet50_fpn")
    p.add_argument("--train", action="store_true")
    p.add_argument("--size", type=int, default=800)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--device", default="cpu", help="cpu or cuda (the GPU visit, scripts/gpu-run.sh)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    for name in a.models.split(","):
        if name not in ("fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "retinanet_resnet50_fpn", *DCN_MODELS):
            raise SystemExit(f"unknown model {name}")
        print(json.dumps(bench(name, a.train, a.size, a.repeat, torch.get_num_threads(), a.device)), flush=True)


if __name__ == "__main__":
    main()
