"""Goldens for tests/Runtime.Nn.Tests/Modules: run with /usr/bin/python3 (Debian python3-torch 1.13, torchvision 0.14).

Writes modules.json: per layer its float64 parameters, input, upstream gradient, output and gradients
(loss = sum(output * upstream)), BatchNorm2d's running statistics after a training step, and the
state_dict keys of a small nn.Sequential. Tests read the file; they never call Python.
"""
import json
import os

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

torch.manual_seed(1234)
D = torch.float64


def flat(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def run(module, x, params):
    x = x.clone().requires_grad_(True)
    y = module(x)
    g = torch.randn(y.shape, dtype=D)
    (y * g).sum().backward()
    res = {"input": flat(x), "upstream": flat(g), "output": flat(y), "input_grad": flat(x.grad)}
    for name in params:
        p = getattr(module, name)
        res[name] = flat(p)
        if p.grad is not None:
            res[name + "_grad"] = flat(p.grad)
    return res


def randomize(module, names, positive=()):
    with torch.no_grad():
        for n in names:
            t = getattr(module, n)
            t.copy_(torch.rand(t.shape, dtype=D) + 0.5 if n in positive else torch.randn(t.shape, dtype=D))


out = {}

lin = nn.Linear(4, 3).double()
randomize(lin, ["weight", "bias"])
out["linear"] = run(lin, torch.randn(2, 4, dtype=D), ["weight", "bias"])

ln = nn.LayerNorm([3, 4]).double()
randomize(ln, ["weight", "bias"])
out["layer_norm"] = run(ln, torch.randn(2, 3, 4, dtype=D) * 2 + 1, ["weight", "bias"])

bn = nn.BatchNorm2d(3).double()
randomize(bn, ["weight", "bias"])
with torch.no_grad():
    bn.running_mean.copy_(torch.randn(3, dtype=D))
    bn.running_var.copy_(torch.rand(3, dtype=D) + 0.5)
rm0, rv0 = bn.running_mean.clone(), bn.running_var.clone()
bn.train()
res = run(bn, torch.randn(2, 3, 2, 3, dtype=D) * 1.5 + 0.3, ["weight", "bias"])
res["running_mean_before"] = flat(rm0)
res["running_var_before"] = flat(rv0)
res["running_mean_after"] = flat(bn.running_mean)
res["running_var_after"] = flat(bn.running_var)
res["num_batches_tracked_after"] = int(bn.num_batches_tracked)
bn.eval()
x2 = torch.randn(2, 3, 2, 3, dtype=D)
res["eval"] = run(bn, x2, [])
out["batch_norm2d"] = res

fbn = FrozenBatchNorm2d(3).double()
randomize(fbn, ["weight", "bias", "running_mean", "running_var"], positive=("running_var",))
out["frozen_batch_norm2d"] = run(fbn, torch.randn(2, 3, 2, 2, dtype=D), ["weight", "bias", "running_mean", "running_var"])
out["frozen_batch_norm2d"]["eps"] = fbn.eps

gn = nn.GroupNorm(2, 4).double()
randomize(gn, ["weight", "bias"])
out["group_norm"] = run(gn, torch.randn(2, 4, 3, 2, dtype=D) + 0.5, ["weight", "bias"])



def run_sd(module, x):
    """Like run, for modules with nested state: every state_dict entry and every parameter's gradient by dotted name."""
    x = x.clone().requires_grad_(True)
    sd = {k: flat(v.double()) for k, v in module.state_dict().items() if v.is_floating_point()}
    y = module(x)
    g = torch.randn(y.shape, dtype=D)
    (y * g).sum().backward()
    res = {"input": flat(x), "upstream": flat(g), "output": flat(y), "input_grad": flat(x.grad), "state": sd}
    res["grads"] = {k: flat(p.grad) for k, p in module.named_parameters()}
    return res


def randomize_all(module):
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, dtype=D) + 0.5)
            elif name.endswith(".weight") and t.dim() == 1:
                t.copy_(torch.rand(t.shape, dtype=D) + 0.5)
            else:
                t.copy_(torch.randn(t.shape, dtype=D) * (0.5 if t.dim() > 1 else 0.3))


# Convolutions, pooling, resampling (outputs and gradients against the input and the parameters).
conv_cases = {
    "conv2d": (nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2, bias=True), (2, 4, 7, 6)),
    "conv2d_dilated": (nn.Conv2d(3, 4, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), bias=False), (1, 3, 6, 7)),
    "conv_transpose2d": (nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, bias=True), (2, 4, 3, 4)),
    "conv_transpose2d_dilated": (nn.ConvTranspose2d(3, 2, (2, 3), stride=(2, 1), padding=(0, 1), output_padding=(1, 0), dilation=(1, 2), bias=False), (1, 3, 3, 3)),
}
for name, (m, shape) in conv_cases.items():
    m = m.double()
    names = ["weight"] + (["bias"] if m.bias is not None else [])
    randomize(m, names)
    out[name] = run(m, torch.randn(*shape, dtype=D), names)

ct = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
randomize(ct, ["weight", "bias"])
xt = torch.randn(1, 2, 4, 4, dtype=D)
out["conv_transpose2d_output_size"] = {"weight": flat(ct.weight), "bias": flat(ct.bias), "input": flat(xt), "output": flat(ct(xt, output_size=[8, 8]))}

pool_cases = {
    "max_pool2d": (nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    "max_pool2d_ceil": (nn.MaxPool2d((2, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=True), (1, 2, 6, 7)),
    "avg_pool2d": (nn.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    "avg_pool2d_ceil_nopad": (nn.AvgPool2d((3, 2), stride=(2, 2), padding=(1, 1), ceil_mode=True, count_include_pad=False), (1, 2, 6, 7)),
    "adaptive_avg_pool2d": (nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    "upsample_nearest_size": (nn.Upsample(size=(5, 7), mode="nearest"), (1, 2, 3, 4)),
    "upsample_nearest_scale": (nn.Upsample(scale_factor=2, mode="nearest"), (1, 2, 3, 4)),
    "upsample_bilinear": (nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False), (1, 2, 3, 4)),
    "upsample_bilinear_align": (nn.Upsample(scale_factor=(1.5, 2.5), mode="bilinear", align_corners=True), (1, 2, 3, 4)),
}
for name, (m, shape) in pool_cases.items():
    out[name] = run(m, torch.randn(*shape, dtype=D), [])
mp = nn.MaxPool2d(2, stride=2, return_indices=True)
xm = torch.randn(1, 2, 4, 5, dtype=D)
vm, im = mp(xm)
out["max_pool2d_indices"] = {"input": flat(xm), "output": flat(vm), "indices": im.reshape(-1).tolist(), "shape": list(im.shape)}

# ResNet blocks in training mode (batch statistics), torchvision's own classes.
from torchvision.models.resnet import BasicBlock, Bottleneck
bb = BasicBlock(4, 4).double()
randomize_all(bb)
out["basic_block"] = run_sd(bb, torch.randn(2, 4, 5, 5, dtype=D))
ds = nn.Sequential(nn.Conv2d(4, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16)).double()
bt = Bottleneck(4, 4, stride=2, downsample=ds, groups=2, base_width=32, dilation=2).double()
randomize_all(bt)
out["bottleneck"] = run_sd(bt, torch.randn(2, 4, 6, 5, dtype=D))

# torchvision's state-dict layout (names, shapes, order) of the ResNet family.
import torchvision
out["resnet_state_dicts"] = {
    name: [[k, list(v.shape)] for k, v in getattr(torchvision.models, name)(num_classes=10).state_dict().items()]
    for name in ["resnet18", "resnet34", "resnet101", "resnext50_32x4d", "wide_resnet50_2"]
}
dil = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
out["resnet50_dilated_conv2"] = {k: [m.stride[0], m.dilation[0], m.padding[0]] for k, m in dil.named_modules() if k.endswith("conv2")}

seq = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2, bias=False), nn.LayerNorm(2)), nn.GroupNorm(1, 2))
out["sequential_state_dict"] = [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype)} for k, v in seq.state_dict().items()]
out["sequential_parameters"] = [k for k, _ in seq.named_parameters()]

out["versions"] = {"torch": torch.__version__}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "modules.json"), "w") as f:
    json.dump(out, f, indent=1)
