"""Golden for the ResNet-50 checkpoint test: run with /usr/bin/python3 (Debian python3-torch 1.13, torchvision 0.14).

Builds torchvision.models.resnet50() with seeded weights that compress well yet leave no two tensors (nor a
transposed or mis-mapped one) alike, calibrates its batch-norm running statistics on random images so that
eval-mode activations stay of order one, and writes, next to this script:

  resnet50.pth.gz          torch.save(state_dict), gzip-compressed
  resnet50.safetensors.gz  the same state dict in the safetensors format (written here by hand), gzip-compressed
  resnet50.json            the periodic base sequence, how the inputs are built from it, torch's logits for
                           them, the state dict's keys/shapes/dtypes and a few of its values

Weights: one base sequence of P = 509 (prime) float32 values drawn from U(-1, 1). A weight tensor's flat
element i is base[(i + offset) % P] * scale * sign[output channel], with a per-tensor offset and scale and a
per-output-channel sign drawn from a seeded generator. A run of P values repeats every P elements, which gzip
finds within its 32 KB window, so ~100 MB of float32 shrinks to a few MB.

Inputs (rebuilt by the test from the base sequence, exactly, in float32): element i of a [N, 3, H, W] input
is (base[(i + a) % P] * base[(i // P + b) % P]) * 3, which does not repeat within P * P elements. The running
statistics are calibrated on a batch built the same way with other (a, b).
"""
import gzip
import json
import os
import struct

import torch
import torchvision

P = 509
HERE = os.path.dirname(os.path.abspath(__file__))


def write_gz(path, data):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as f:
            f.write(data)


def safetensors_bytes(state):
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header, chunks, offset = {}, [], 0
    for name, t in state.items():
        data = t.detach().contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def make_input(base, shape, a, b):
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.int64)
    return ((base[(i + a) % P] * base[(i // P + b) % P]) * 3.0).reshape(shape)


def main():
    gen = torch.Generator().manual_seed(20240531)
    base = torch.rand(P, generator=gen, dtype=torch.float32) * 2 - 1

    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    with torch.no_grad():
        for name, p in model.named_parameters():
            offset = int(torch.randint(0, P, (1,), generator=gen))
            idx = (torch.arange(p.numel(), dtype=torch.int64) + offset) % P
            values = base[idx].reshape(p.shape)
            if name.endswith("bias"):
                values = values * 0.2
            elif p.dim() == 1:
                values = 1.0 + 0.4 * values  # norm weights in [0.6, 1.4]
            else:
                fan_in = p[0].numel()
                scale = float(torch.rand(1, generator=gen)) + 0.5
                sign = torch.randint(0, 2, (p.shape[0],), generator=gen).to(torch.float32) * 2 - 1
                values = values * (scale / fan_in ** 0.5) * sign.reshape([-1] + [1] * (p.dim() - 1))
            p.copy_(values)

        # Calibrate: training-mode passes with momentum None make each running mean/variance the average of the
        # calibration batches' statistics (one batch of 224 x 224 images, one of 112 x 112), so the eval-mode network
        # normalises inputs like them, at either size, to activations of order one.
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model.train()
        for size in (224, 112):
            model(torch.cat([make_input(base, [1, 3, size, size], 31 * k + 5, 57 * k + 3) for k in range(6)]))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.1
                m.num_batches_tracked.fill_(7)
        model.eval()

        inputs = {
            "cpu224": {"shape": [1, 3, 224, 224], "a": 17, "b": 400},
            "small112": {"shape": [1, 3, 112, 112], "a": 301, "b": 77},
        }
        for spec in inputs.values():
            x = make_input(base, spec["shape"], spec["a"], spec["b"])
            logits = model(x)
            spec["logits"] = {"shape": list(logits.shape), "data": logits.reshape(-1).tolist()}
            feats = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4)(x)
            spec["c5_abs_mean"] = float(feats.abs().mean())
            spec["c5_std"] = float(feats.std())

    state = model.state_dict()
    torch.save(state, os.path.join(HERE, "resnet50.pth"))
    with open(os.path.join(HERE, "resnet50.pth"), "rb") as f:
        pth = f.read()
    os.remove(os.path.join(HERE, "resnet50.pth"))
    write_gz(os.path.join(HERE, "resnet50.pth.gz"), pth)
    write_gz(os.path.join(HERE, "resnet50.safetensors.gz"), safetensors_bytes(state))

    probes = {}
    for key in ["conv1.weight", "bn1.running_mean", "bn1.running_var", "layer1.0.downsample.0.weight", "layer2.3.conv2.weight",
                "layer3.5.bn3.weight", "layer4.2.conv3.weight", "fc.weight", "fc.bias"]:
        flat = state[key].reshape(-1)
        idx = sorted({0, 1, flat.numel() // 3, flat.numel() // 2 + 5, flat.numel() - 1})
        probes[key] = {"index": idx, "values": [float(flat[i]) for i in idx]}
    out = {
        "period": P,
        "base": base.tolist(),
        "inputs": inputs,
        "keys": [{"name": k, "shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in state.items()],
        "probes": probes,
        "num_batches_tracked": 7,
        "versions": {"torch": torch.__version__, "torchvision": torchvision.__version__},
    }
    with open(os.path.join(HERE, "resnet50.json"), "w") as f:
        json.dump(out, f, indent=0)
    for name in ["resnet50.pth.gz", "resnet50.safetensors.gz", "resnet50.json"]:
        print(name, os.path.getsize(os.path.join(HERE, name)))
    print("raw pth", len(pth))
    for name, spec in inputs.items():
        print(name, "logit range", min(spec["logits"]["data"]), max(spec["logits"]["data"]), "c5 |x|", spec["c5_abs_mean"], "std", spec["c5_std"])


if __name__ == "__main__":
    main()
