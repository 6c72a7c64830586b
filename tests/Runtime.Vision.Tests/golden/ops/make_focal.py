"""Goldens for FocalLossTests.cs: torchvision 0.14 sigmoid_focal_loss (float64), value and input gradient.

Run with /usr/bin/python3 (Debian torch 1.13 / torchvision 0.14); writes focal.json next to this file.
The loss itself lives in Runtime.Nn (Losses.SigmoidFocalLoss); these cases check it on every device the
vision-operator suites run on, as RetinaNet uses it: logits over anchors x classes, 0/1 targets, soft targets.
"""
import json
import os

import torch
from torchvision.ops import sigmoid_focal_loss

torch.manual_seed(3)


def t(x):
    x = x.detach().contiguous()
    return {"shape": list(x.shape), "data": x.reshape(-1).tolist()}


cases = []
for (n, k), alpha, gamma, red, soft in [
    ((37, 5), 0.25, 2.0, "none", False),
    ((37, 5), 0.25, 2.0, "sum", False),
    ((64, 3), -1.0, 2.0, "mean", False),
    ((20, 4), 0.5, 0.0, "none", False),
    ((20, 4), 0.25, 1.5, "sum", True),
    ((100, 9), 0.25, 2.0, "sum", False),
]:
    x = (torch.randn(n, k, dtype=torch.float64) * 3).requires_grad_()
    target = torch.rand(n, k, dtype=torch.float64) if soft else (torch.rand(n, k) < 0.2).double()
    y = sigmoid_focal_loss(x, target, alpha=alpha, gamma=gamma, reduction=red)
    w = torch.randn(y.shape, dtype=torch.float64)
    (y * w).sum().backward()
    cases.append({"alpha": alpha, "gamma": gamma, "reduction": red, "input": t(x), "target": t(target),
                  "out": t(y), "out_weight": t(w), "input_grad": t(x.grad)})

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "focal.json"), "w") as f:
    json.dump({"cases": cases}, f)
