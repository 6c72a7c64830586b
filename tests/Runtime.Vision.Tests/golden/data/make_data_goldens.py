#!/usr/bin/python3
"""Reference values for the data-set transforms (tests/Runtime.Vision.Tests/Data).

Run with Debian's python3-torch / python3-torchvision (PyTorch 1.13, torchvision 0.14):
    /usr/bin/python3 tests/Runtime.Vision.Tests/golden/data/make_data_goldens.py
Writes data_goldens.json next to this script. The tests only read the JSON.
"""
import json
import os

import torch
import torch.nn.functional as F
from torchvision.models.detection.transform import GeneralizedRCNNTransform

torch.manual_seed(1234)


def floats(t):
    return [float(v) for v in t.reshape(-1).tolist()]


out = {"torch": torch.__version__}

# Bilinear, align_corners=False, explicit output size (what GeneralizedRCNNTransform ends up using).
src = torch.rand(2, 5, 7)
out["bilinear"] = {"channels": 2, "height": 5, "width": 7, "input": floats(src), "cases": []}
for oh, ow in [(3, 4), (8, 11), (5, 7), (10, 14), (2, 3), (1, 1), (9, 5)]:
    y = F.interpolate(src[None], size=(oh, ow), mode="bilinear", align_corners=False)[0]
    out["bilinear"]["cases"].append({"height": oh, "width": ow, "output": floats(y)})

# Nearest (legacy mode), as used for masks.
mask = (torch.rand(3, 4, 6) > 0.5).float()
out["nearest"] = {"planes": 3, "height": 4, "width": 6, "input": floats(mask), "cases": []}
for oh, ow in [(7, 9), (2, 3), (8, 12), (4, 6), (5, 13)]:
    y = F.interpolate(mask[:, None], size=(oh, ow))[:, 0]
    out["nearest"]["cases"].append({"height": oh, "width": ow, "output": floats(y)})

# GeneralizedRCNNTransform resize rule (eval mode: min_size[-1]) and padded batch shape.
sizes = []
for (mn, mx) in [(800, 1333), (600, 1000), (64, 100)]:
    t = GeneralizedRCNNTransform(mn, mx, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    t.eval()
    for h, w in [(480, 640), (640, 480), (427, 640), (375, 500), (333, 1000), (100, 1000), (612, 612),
                 (1, 1), (37, 53), (128, 256), (256, 131), (799, 1201), (1080, 1920)]:
        il, _ = t([torch.zeros(3, h, w)])
        sizes.append({"min_size": mn, "max_size": mx, "in": [h, w], "out": list(il.image_sizes[0]),
                      "padded": list(il.tensors.shape[-2:])})
out["resize_sizes"] = sizes

# The whole transform on two small images with targets (boxes, masks).
t = GeneralizedRCNNTransform(24, 40, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
t.eval()
imgs = [torch.rand(3, 13, 17), torch.rand(3, 20, 11)]
boxes = [torch.tensor([[1.0, 2.0, 9.5, 12.0], [0.0, 0.0, 17.0, 13.0]]), torch.tensor([[2.25, 3.5, 7.0, 19.0]])]
masks = [(torch.rand(2, 13, 17) > 0.5).to(torch.uint8), (torch.rand(1, 20, 11) > 0.5).to(torch.uint8)]
targets = [{"boxes": b.clone(), "labels": torch.ones(len(b), dtype=torch.int64), "masks": m.clone()} for b, m in zip(boxes, masks)]
il, tt = t(imgs, targets)
batch = il.tensors
gen = torch.Generator().manual_seed(7)
idx = torch.randint(0, batch.numel(), (64,), generator=gen)
out["transform"] = {
    "min_size": 24, "max_size": 40,
    "images": [{"shape": list(i.shape), "data": floats(i)} for i in imgs],
    "boxes": [floats(b) for b in boxes],
    "masks": [{"shape": list(m.shape), "data": [int(v) for v in m.reshape(-1).tolist()]} for m in masks],
    "batch_shape": list(batch.shape),
    "image_sizes": [list(s) for s in il.image_sizes],
    "sample_index": [int(i) for i in idx.tolist()],
    "sample_value": [float(batch.reshape(-1)[i]) for i in idx.tolist()],
    "batch_sum": float(batch.double().sum()),
    "out_boxes": [floats(x["boxes"]) for x in tt],
    "out_masks": [{"shape": list(x["masks"].shape), "data": [int(v) for v in x["masks"].reshape(-1).tolist()]} for x in tt],
}

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_goldens.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {path} ({os.path.getsize(path)} bytes)")
