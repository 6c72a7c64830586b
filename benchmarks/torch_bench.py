#!/usr/bin/env python3
"""Times PyTorch on the shapes `runtime bench` uses and prints the same JSON lines (impl "torch").

Usage: /usr/bin/python3 benchmarks/torch_bench.py [--threads 2] [--ops matmul:1024,matmul:2048,add,softmax]
Each spec is op[:shape] with shape as in `runtime bench --shape` ('x'-separated inside --ops).
conv2d specs take the convolution from op[:shape[:k=3:out=256:s=1:p=1:d=1:g=1:bwd]], the same settings as
`runtime bench conv2d --kernel --out --stride --padding --dilation --groups --backward`, e.g.
    --ops conv2d:8x256x14x14:k=3:out=256:s=1:p=1,conv2d:1x3x224x224:k=7:out=64:s=2:p=3:bwd
resnet50:<batch> and resnet50_train:<batch> time torchvision's ResNet-50 as `runtime bench resnet50` does.
"""
import argparse
import json
import statistics
import time

import torch

import timing


def measure(fn, repeat=None):
    return timing.measure(fn, repeat, before=3)


def conv2d(shape, conv, dtype):
    """The conv2d case: returns the timed function, the work in GFLOP and the shape text `runtime bench` prints."""
    n, c, h, w = shape or [8, 256, 14, 14]
    k = int(conv.get("k", 3))
    out = int(conv.get("out", c))
    s, d, g = int(conv.get("s", 1)), int(conv.get("d", 1)), int(conv.get("g", 1))
    p = int(conv.get("p", k // 2))
    bwd = "bwd" in conv
    x = torch.randn(n, c, h, w, dtype=dtype, requires_grad=bwd)
    wt = torch.randn(out, c // g, k, k, dtype=dtype, requires_grad=bwd)
    b = torch.randn(out, dtype=dtype, requires_grad=bwd)
    oh = (h + 2 * p - d * (k - 1) - 1) // s + 1
    ow = (w + 2 * p - d * (k - 1) - 1) // s + 1
    macs = n * out * oh * ow * (c // g) * k * k

    def fn():
        with torch.set_grad_enabled(bwd):
            y = torch.nn.functional.conv2d(x, wt, b, s, p, d, g)
            if bwd:
                y.backward(torch.ones_like(y))
                x.grad = wt.grad = b.grad = None

    text = f"{n}x{c}x{h}x{w}>{out}k{k}x{k}s{s}p{p}" + (f"d{d}" if d != 1 else "") + (f"g{g}" if g != 1 else "") + ("+bwd" if bwd else "")
    return fn, (3 if bwd else 1) * 2.0 * macs / 1e9, text


def run(op, shape, dtype, threads, conv=None):
    torch.manual_seed(1234)
    es = torch.tensor([], dtype=dtype).element_size()
    if op == "conv2d":
        fn, work, text = conv2d(shape, conv or {}, dtype)
        med, mn, reps = measure(fn)
        return {"impl": "torch", "op": op, "shape": text, "dtype": str(dtype).replace("torch.", ""), "device": "cpu",
                "threads": threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
                "GFLOP_per_s": round(work / (med / 1000), 2), "version": torch.__version__}
    with torch.no_grad():
        if op == "matmul":
            m, n, k = (shape * 3 if len(shape) == 1 else shape) if shape else (1024, 1024, 1024)
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            fn = lambda: torch.matmul(a, b)
            work, unit, text = 2.0 * m * n * k / 1e9, "GFLOP_per_s", f"{m}x{n}x{k}"
        elif op == "add_out":
            # The kernel alone: writes into a preallocated output (no 64 MB allocation per call).
            sh = shape or [16 * 1024 * 1024]
            a, b = torch.randn(*sh, dtype=dtype), torch.randn(*sh, dtype=dtype)
            c = torch.empty_like(a)
            fn = lambda: torch.add(a, b, out=c)
            work, unit, text = 3 * a.numel() * es / 1e9, "GB_per_s", "x".join(map(str, sh))
        elif op in ("add", "mul", "relu", "exp", "sum"):
            sh = shape or [16 * 1024 * 1024]
            a, b = torch.randn(*sh, dtype=dtype), torch.randn(*sh, dtype=dtype)
            n = a.numel()
            fn, mult = {
                "add": (lambda: a + b, 3), "mul": (lambda: a * b, 3), "relu": (lambda: torch.relu(a), 2),
                "exp": (lambda: torch.exp(a), 2), "sum": (lambda: a.sum(), 1),
            }[op]
            work, unit, text = mult * n * es / 1e9, "GB_per_s", "x".join(map(str, sh))
        elif op == "softmax":
            sh = shape or [4096, 1024]
            a = torch.randn(*sh, dtype=dtype)
            fn = lambda: torch.softmax(a, -1)
            work, unit, text = 2.0 * a.numel() * es / 1e9, "GB_per_s", "x".join(map(str, sh))
        elif op == "maxpool2d":
            sh = shape or [8, 64, 112, 112]
            a = torch.randn(*sh, dtype=dtype)
            fn = lambda: torch.nn.functional.max_pool2d(a, 3, 2, 1)
            out_el = sh[0] * sh[1] * ((sh[2] - 1) // 2 + 1) * ((sh[3] - 1) // 2 + 1)
            work, unit, text = (a.numel() + out_el) * es / 1e9, "GB_per_s", "x".join(map(str, sh))
        elif op == "interpolate":
            sh = shape or [8, 256, 56, 56]
            a = torch.randn(*sh, dtype=dtype)
            fn = lambda: torch.nn.functional.interpolate(a, scale_factor=2.0, mode="nearest")
            work, unit, text = 5.0 * a.numel() * es / 1e9, "GB_per_s", "x".join(map(str, sh))
        elif op in ("resnet50", "resnet50_train"):
            return resnet50(op, shape, threads)
        else:
            raise SystemExit(f"unknown op {op}")
        med, mn, reps = measure(fn)
    return {"impl": "torch", "op": op, "shape": text, "dtype": str(dtype).replace("torch.", ""), "device": "cpu",
            "threads": threads, "repeats": reps, "median_ms": round(med, 4), "min_ms": round(mn, 4),
            unit: round(work / (med / 1000), 2), "version": torch.__version__}


def resnet50(op, shape, threads):
    """torchvision resnet50 at 224x224: eval forward under no_grad (resnet50:<batch>), or one training step
    (resnet50_train:<batch>: train-mode BN, forward, cross-entropy, backward, zero_grad). Warm-up, then the
    median, with repetitions for ~15 s (3 to 30) as `runtime bench resnet50` does."""
    import torchvision
    batch = shape[0] if shape else (8 if op == "resnet50_train" else 1)
    model = torchvision.models.resnet50()
    x = torch.randn(batch, 3, 224, 224)
    target = torch.randint(0, 1000, (batch,))
    if op == "resnet50":
        model.eval()

        def fn():
            with torch.no_grad():
                model(x)
    else:
        model.train()

        def fn():
            with torch.enable_grad():  # run() times under no_grad
                loss = torch.nn.functional.cross_entropy(model(x), target)
                loss.backward()
            model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000
    fn()
    reps = int(min(30, max(3, 15000 / max(first, 1))))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(times)
    return {"impl": "torch", "op": op, "shape": f"{batch}x3x224x224", "dtype": "float32", "device": "cpu", "threads": threads,
            "repeats": reps, "median_ms": round(med, 4), "min_ms": round(min(times), 4), "img_per_s": round(batch / (med / 1000), 2),
            "version": torch.__version__}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--ops", default="matmul:1024,matmul:2048,add,softmax")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    for spec in args.ops.split(","):
        op, *parts = spec.split(":")
        sh = parts[0] if parts else ""
        shape = [int(v) for v in sh.replace("x", " ").split()] if sh else None
        conv = dict(part.partition("=")[::2] for part in parts[1:])
        print(json.dumps(run(op, shape, dtype, args.threads, conv)), flush=True)


if __name__ == "__main__":
    main()
